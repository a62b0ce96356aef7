// Command promlint checks a Prometheus text exposition read from stdin as
// `promtool check metrics` does: the same parser (client_golang's expfmt) and
// the same lint (client_golang's testutil/promlint, which promtool calls),
// without installing Prometheus and its services. It prints each problem as
// "metric: text" and exits 1 on a parse error, 3 on lint problems, 0 when
// clean. Built by the tool-servers suite (scripts/test-all.sh) into
// ST_TOOLS_DIR; cli/tests/provenance.rs runs it on `run --metrics` output.
package main

import (
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func main() {
	problems, err := promlint.New(os.Stdin).Lint()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error while linting:", err)
		os.Exit(1)
	}
	for _, p := range problems {
		fmt.Fprintf(os.Stderr, "%s: %s\n", p.Metric, p.Text)
	}
	if len(problems) > 0 {
		os.Exit(3)
	}
}
