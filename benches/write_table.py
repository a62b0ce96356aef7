"""Writes a benchmark's table into its page: replaces the block between
NAME's markers (`<!-- bench:NAME -->` ... `<!-- /bench:NAME -->`) with the
provenance line and the table (scripts/bench.sh calls it after each one).

    python3 benches/write_table.py PAGE NAME TABLE_FILE PROVENANCE_LINE
"""
import re
import sys

doc, name, table, line = sys.argv[1:]
text = open(doc).read()
start, end = "<!-- bench:%s -->" % name, "<!-- /bench:%s -->" % name
if start not in text or end not in text:
    sys.exit("%s has no markers for %s" % (doc, name))
body = "%s\n\n_%s_\n\n%s\n%s" % (start, line, open(table).read().strip(), end)
pattern = re.escape(start) + ".*?" + re.escape(end)
open(doc, "w").write(re.sub(pattern, lambda m: body, text, flags=re.S))
