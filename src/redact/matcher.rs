//! The one matcher: every value to conceal and each of its encoded forms,
//! searched for together, leftmost-longest; used by [`redact`](super::redact),
//! the [`Redactor`](super::Redactor) stream, `st-secrets run`'s masking and
//! `st-secrets scan`.
//!
//! Masking replaces every byte of every occurrence, a run of overlapping or
//! adjacent occurrences by one placeholder, also when an occurrence is split
//! across reads, as `op run` does. Everything else passes through byte for
//! byte (binary data included). A stream holds bytes back only while they
//! could be the start of a form: the longest tail of what was read that is a
//! proper prefix of one (at most the longest form's length less one).
//! Anything else is passed on at once, so progress output is not delayed.

use super::forms::{forms, Encoding};
use aho_corasick::{packed, AhoCorasick, AhoCorasickKind, Input, MatchKind};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::sync::Arc;
use zeroize::Zeroizing;

/// What replaces a value.
pub const PLACEHOLDER: &[u8] = b"<concealed by st-secrets>";

/// The shortest value matched, and the shortest whose encoded forms are
/// matched, by default: 8 bytes. A fixed 8-byte string turns up by chance
/// about once in 2^64 positions (never in a terabyte of random data), a
/// 4-byte one once in every 4 GiB for each form; and no credential worth
/// the name is shorter (AWS access key ids are 20, tokens 20 to 100).
pub const MIN_LEN: usize = 8;

/// Needles per Teddy searcher: past 64 a searcher slows by an order of
/// magnitude (measured: 8 GB/s at 64 needles, 0.5 at 72), so more needles
/// are split into groups searched one after the other.
const GROUP: usize = 64;

/// Groups at most: past 8 the groups together are slower than the
/// automaton (about 0.6 GB/s whatever the number of needles).
const MAX_GROUPS: usize = 8;

/// A multi-needle search, leftmost-longest.
enum Searcher {
    /// Teddy (SIMD) searchers of up to [`GROUP`] needles each, on CPUs that
    /// have it: several GB/s on any data, where the automaton's rare-byte
    /// prefilter slows to a crawl on base64 or hex (every byte is common
    /// there).
    Packed(Vec<packed::Searcher>),
    /// Aho-Corasick DFA, otherwise.
    Automaton(AhoCorasick),
}

impl Searcher {
    fn new(needles: &[Zeroizing<Vec<u8>>]) -> Option<Searcher> {
        if needles.len() <= GROUP * MAX_GROUPS {
            let groups: Option<Vec<packed::Searcher>> = needles
                .chunks(GROUP)
                .map(|group| {
                    packed::Config::new()
                        .match_kind(packed::MatchKind::LeftmostLongest)
                        .builder()
                        .extend(group.iter().map(|n| &n[..]))
                        .build()
                })
                .collect();
            if let Some(groups) = groups {
                return Some(Searcher::Packed(groups));
            }
        }
        AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::DFA))
            .prefilter(false)
            .build(needles.iter().map(|n| &n[..]))
            .or_else(|_| {
                // Too many needles for a DFA's size limit: the automaton
                // the crate picks.
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(needles.iter().map(|n| &n[..]))
            })
            .ok()
            .map(Searcher::Automaton)
    }
}

/// A search through one buffer: each next occurrence starting at `at` or
/// later. Each group's next match is kept, so a group is searched again
/// only once the search has gone past it (no rescans).
struct Search<'s> {
    searcher: &'s Searcher,
    /// Per group: not searched yet (`None`), or its next match from the
    /// last place it was searched from.
    next: Vec<Option<Option<(usize, usize, usize)>>>,
}

impl<'s> Search<'s> {
    fn new(searcher: &'s Searcher) -> Search<'s> {
        let groups = match searcher {
            Searcher::Packed(groups) => groups.len(),
            Searcher::Automaton(_) => 0,
        };
        Search {
            searcher,
            next: vec![None; groups],
        }
    }

    /// The leftmost-longest occurrence starting at `at` or later: its
    /// start, end and needle.
    fn find(&mut self, buf: &[u8], at: usize) -> Option<(usize, usize, usize)> {
        let groups = match self.searcher {
            Searcher::Automaton(a) => {
                let m = a.find(Input::new(buf).span(at..buf.len()))?;
                return Some((m.start(), m.end(), m.pattern().as_usize()));
            }
            Searcher::Packed(groups) => groups,
        };
        let mut best: Option<(usize, usize, usize)> = None;
        for (i, (group, next)) in groups.iter().zip(&mut self.next).enumerate() {
            let stale = match next {
                None => true,
                Some(Some((start, _, _))) => *start < at,
                Some(None) => false,
            };
            if stale {
                let m = group.find_in(buf, aho_corasick::Span::from(at..buf.len()));
                *next = Some(m.map(|m| (m.start(), m.end(), i * GROUP + m.pattern().as_usize())));
            }
            if let Some(Some(m)) = next {
                if best.is_none_or(|b| m.0 < b.0 || (m.0 == b.0 && m.1 > b.1)) {
                    best = Some(*m);
                }
            }
        }
        best
    }
}

/// One occurrence of a value found by [`Patterns::find_all`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding<'p> {
    /// Where it starts.
    pub start: usize,
    /// Where it ends (exclusive).
    pub end: usize,
    /// The key whose value it is.
    pub key: &'p str,
    /// How the value was encoded there.
    pub encoding: Encoding,
}

/// The values to look for, each under its key, with their encoded forms.
/// The needles (values and forms) are zeroed on drop; the search tables
/// built from them are not.
pub struct Patterns {
    searcher: Searcher,
    needles: Vec<Zeroizing<Vec<u8>>>,
    /// For each needle: the index of its key in `keys`, and its encoding.
    labels: Vec<(usize, Encoding)>,
    keys: Vec<String>,
    longest: usize,
    /// Whether a byte starts some needle (a quick test for the held-back tail).
    first_bytes: [bool; 256],
}

impl Patterns {
    /// Values of at least [`MIN_LEN`] bytes, each with its encoded forms:
    /// what the library's redaction and `scan` look for. `None` when there
    /// is nothing to look for.
    pub fn new<'a>(values: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Option<Patterns> {
        Patterns::with_floor(values, MIN_LEN)
    }

    /// As [`new`](Self::new), with raw values down to `floor` bytes (encoded
    /// forms still from [`MIN_LEN`]): `run`'s masking conceals values of 4
    /// bytes and more on a terminal.
    pub fn with_floor<'a>(
        values: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        floor: usize,
    ) -> Option<Patterns> {
        let mut keys: Vec<String> = Vec::new();
        let mut key_index: HashMap<&str, usize> = HashMap::new();
        let mut all = Vec::new();
        for (key, value) in values {
            if value.len() < floor.max(1) {
                continue;
            }
            let k = *key_index.entry(key).or_insert_with(|| {
                keys.push(key.to_owned());
                keys.len() - 1
            });
            for (encoding, form) in forms(value, value.len() >= MIN_LEN) {
                all.push((k, encoding, form));
            }
        }
        // The first of equal needles keeps its label.
        let keep: Vec<bool> = {
            let mut seen = HashSet::new();
            all.iter().map(|(_, _, f)| seen.insert(&f[..])).collect()
        };
        let mut needles = Vec::new();
        let mut labels = Vec::new();
        for ((k, encoding, form), keep) in all.into_iter().zip(keep) {
            if keep {
                needles.push(form);
                labels.push((k, encoding));
            }
        }
        if needles.is_empty() {
            return None;
        }
        let searcher = Searcher::new(&needles)?;
        let mut first_bytes = [false; 256];
        for n in &needles {
            first_bytes[usize::from(n[0])] = true;
        }
        let longest = needles.iter().map(|n| n.len()).max().unwrap_or(0);
        Some(Patterns {
            searcher,
            needles,
            labels,
            keys,
            longest,
            first_bytes,
        })
    }

    /// How many byte strings are looked for (values and their forms).
    pub fn needles(&self) -> usize {
        self.needles.len()
    }

    /// The longest of them: a stream scanned in pieces must overlap them by
    /// one less than this.
    pub fn longest(&self) -> usize {
        self.longest
    }

    /// Every occurrence in `buf`, leftmost-longest, not overlapping.
    pub fn find_all<'p, 'b>(&'p self, buf: &'b [u8]) -> impl Iterator<Item = Finding<'p>> + 'b
    where
        'p: 'b,
    {
        let mut at = 0;
        let mut search = Search::new(&self.searcher);
        std::iter::from_fn(move || {
            let (start, end, needle) = search.find(buf, at)?;
            at = end;
            let (key, encoding) = self.labels[needle];
            Some(Finding {
                start,
                end,
                key: &self.keys[key],
                encoding,
            })
        })
    }

    /// `buf` with every occurrence replaced by [`PLACEHOLDER`] (a run of
    /// overlapping or adjacent ones by one); `None` when there is none.
    pub fn redact(&self, buf: &[u8]) -> Option<Vec<u8>> {
        let mut spans = Vec::new();
        self.spans_into(buf, 0, &mut spans);
        if spans.is_empty() {
            return None;
        }
        let mut out = Vec::with_capacity(buf.len());
        let mut pos = 0;
        for (start, end) in spans {
            out.extend_from_slice(&buf[pos..start]);
            out.extend_from_slice(PLACEHOLDER);
            pos = end;
        }
        out.extend_from_slice(&buf[pos..]);
        Some(out)
    }

    /// Fills `spans` with the occurrence runs of `buf`: leftmost-longest
    /// search, each match grown over the needles that start inside it and
    /// end past it, so overlapping occurrences are covered as a whole;
    /// `covered` leading bytes count as one run.
    fn spans_into(&self, buf: &[u8], covered: usize, spans: &mut Vec<(usize, usize)>) {
        spans.clear();
        if covered > 0 {
            spans.push((0, covered));
        }
        let mut at = 0;
        let mut search = Search::new(&self.searcher);
        while let Some((start, end, _)) = search.find(buf, at) {
            let end = self.grow(buf, start, end);
            match spans.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => spans.push((start, end)),
            }
            at = end;
        }
    }

    /// The end of the occurrence run starting with the match `start..end`:
    /// extended while some needle starts inside it and ends past it.
    fn grow(&self, buf: &[u8], start: usize, mut end: usize) -> usize {
        let mut p = start + 1;
        while p < end {
            if self.first_bytes[usize::from(buf[p])] {
                for n in &self.needles {
                    if p + n.len() > end && buf[p..].starts_with(n) {
                        end = p + n.len();
                    }
                }
            }
            p += 1;
        }
        end
    }

    /// Where the longest tail of `buf` that is a proper prefix of some
    /// needle starts (`buf.len()` when there is none).
    fn hold_from(&self, buf: &[u8]) -> usize {
        let start = buf.len().saturating_sub(self.longest - 1);
        (start..buf.len())
            .find(|&i| {
                self.first_bytes[usize::from(buf[i])]
                    && self
                        .needles
                        .iter()
                        .any(|n| n.len() > buf.len() - i && n.starts_with(&buf[i..]))
            })
            .unwrap_or(buf.len())
    }
}

/// How much one read takes.
pub const CHUNK: usize = 128 * 1024;

/// A stream being masked: read into it, then pass on what it can.
pub struct Masker {
    patterns: Arc<Patterns>,
    /// Bytes held back (they could start a value), then the next read:
    /// `data[..len]`. Allocated once; the held bytes move to the front after
    /// each pass, so a read never waits for room.
    data: Vec<u8>,
    len: usize,
    /// How many leading bytes of `data` are inside an occurrence whose
    /// placeholder was already written.
    covered: usize,
    /// Whether the output so far ends with a placeholder that a span
    /// starting at `data[0]` continues (covered bytes, or an occurrence that
    /// ended exactly where the last pass stopped).
    open: bool,
    /// Occurrences found in `data[..len]`, merged: `(start, end)`.
    spans: Vec<(usize, usize)>,
    /// The output of a pass that replaces something.
    out: Vec<u8>,
    /// Placeholders written so far.
    concealed: u64,
}

impl Masker {
    /// A stream masked with `patterns`.
    pub fn new(patterns: Arc<Patterns>) -> Masker {
        Masker {
            data: vec![0; CHUNK + patterns.longest],
            patterns,
            len: 0,
            covered: 0,
            open: false,
            spans: Vec::new(),
            out: Vec::new(),
            concealed: 0,
        }
    }

    /// What was read and not passed on yet (after a pass: the bytes held
    /// back), for a masker that takes over ([`resume`](Self::resume));
    /// without the bytes a placeholder already stands for (the rest of an
    /// occurrence, which the new masker could not tell from other bytes).
    pub fn pending(&self) -> &[u8] {
        &self.data[self.covered.min(self.len)..self.len]
    }

    /// Takes over another masker's [`pending`](Self::pending) bytes (when
    /// the values to conceal grow: a rotated secret).
    pub fn resume(&mut self, pending: &[u8]) {
        if self.data.len() < pending.len() + CHUNK {
            self.data.resize(pending.len() + CHUNK, 0);
        }
        self.data[..pending.len()].copy_from_slice(pending);
        self.len = pending.len();
    }

    /// The values this stream conceals.
    pub fn patterns(&self) -> &Arc<Patterns> {
        &self.patterns
    }

    /// How many placeholders were written.
    pub fn concealed(&self) -> u64 {
        self.concealed
    }

    /// Takes `bytes` as if read (a stream written to, not read from).
    pub fn push(&mut self, bytes: &[u8]) {
        if self.data.len() < self.len + bytes.len() {
            self.data.resize(self.len + bytes.len(), 0);
        }
        self.data[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// One read from `from` (up to [`CHUNK`] bytes); 0 at its end.
    pub fn read_from(&mut self, from: &mut impl Read) -> std::io::Result<usize> {
        if self.data.len() < self.len + CHUNK {
            self.data.resize(self.len + CHUNK, 0);
        }
        let n = from.read(&mut self.data[self.len..self.len + CHUNK])?;
        self.len += n;
        Ok(n)
    }

    /// Writes to `to` everything read so far, occurrences replaced, except
    /// a tail that could start a value (all of it `at_end`). What replaces
    /// nothing is written straight from the read buffer.
    pub fn pass_on(&mut self, to: &mut impl Write, at_end: bool) -> std::io::Result<()> {
        let buf = &self.data[..self.len];
        let cut = if at_end {
            buf.len()
        } else {
            self.patterns.hold_from(buf)
        };
        self.patterns
            .spans_into(&self.data[..self.len], self.covered, &mut self.spans);
        if cut == 0 {
            return Ok(()); // nothing can be passed on yet
        }
        if self.spans.first().is_none_or(|s| s.0 >= cut) {
            to.write_all(&self.data[..cut])?;
            self.covered = 0;
            self.open = false;
        } else {
            self.out.clear();
            let mut pos = 0;
            for &(start, end) in &self.spans {
                if start >= cut {
                    break;
                }
                self.out.extend_from_slice(&self.data[pos..start]);
                // A span starting at 0 can continue a placeholder already out.
                if !(start == 0 && self.open) {
                    self.out.extend_from_slice(PLACEHOLDER);
                    self.concealed += 1;
                }
                pos = end;
            }
            // Where the bytes already replaced end: past the last span
            // written, or where they ended before.
            let replaced_to = pos.max(self.covered);
            if replaced_to < cut {
                self.out.extend_from_slice(&self.data[pos..cut]);
                self.covered = 0;
                self.open = false;
            } else {
                self.covered = replaced_to - cut;
                self.open = true;
            }
            to.write_all(&self.out)?;
        }
        self.data.copy_within(cut..self.len, 0);
        self.len -= cut;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One read of `input` (shorter than a chunk), passed on to `out`.
    fn feed(m: &mut Masker, mut input: &[u8], out: &mut Vec<u8>) {
        while m.read_from(&mut input).unwrap() > 0 {}
        m.pass_on(out, false).unwrap();
    }

    /// `input` masked with `values`, fed in pieces of `piece` bytes.
    fn mask(values: &[&str], input: &[u8], piece: usize) -> Vec<u8> {
        let patterns = Patterns::with_floor(values.iter().map(|v| ("k", v.as_bytes())), 4).unwrap();
        let mut m = Masker::new(Arc::new(patterns));
        let mut out = Vec::new();
        for chunk in input.chunks(piece.max(1)) {
            feed(&mut m, chunk, &mut out);
        }
        m.pass_on(&mut out, true).unwrap();
        out
    }

    fn text(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn values_are_replaced_whatever_the_read_boundaries() {
        let input = b"token=hf_SECRETVALUE; again hf_SECRETVALUE.";
        for piece in 1..=input.len() {
            assert_eq!(
                text(mask(&["hf_SECRETVALUE"], input, piece)),
                "token=<concealed by st-secrets>; again <concealed by st-secrets>.",
                "piece {piece}"
            );
        }
    }

    #[test]
    fn overlapping_and_adjacent_values_leave_no_byte_behind() {
        for piece in 1..=12 {
            // "abcdXY" holds "abcd" and "cdXY": one run, one placeholder.
            assert_eq!(
                text(mask(&["abcd", "cdXY"], b"[abcdXY]", piece)),
                "[<concealed by st-secrets>]",
                "piece {piece}"
            );
            assert_eq!(
                text(mask(&["aaaa"], b"aaaaaaaaaa-", piece)),
                "<concealed by st-secrets>-",
                "piece {piece}"
            );
            assert_eq!(
                text(mask(&["1234", "123456"], b"x123456y1234", piece)),
                "x<concealed by st-secrets>y<concealed by st-secrets>",
                "piece {piece}"
            );
        }
    }

    #[test]
    fn prefixes_are_held_only_while_they_can_still_match() {
        let patterns = Patterns::with_floor([("k", &b"SECRET"[..])], 4).unwrap();
        let mut m = Masker::new(Arc::new(patterns));
        let mut out = Vec::new();
        feed(&mut m, b"progress 10%\nSEC", &mut out);
        assert_eq!(out, b"progress 10%\n", "only the possible start is held");
        feed(&mut m, b"OND", &mut out);
        assert_eq!(out, b"progress 10%\nSECOND");
        feed(&mut m, b" SECRE", &mut out);
        m.pass_on(&mut out, true).unwrap();
        assert_eq!(
            out, b"progress 10%\nSECOND SECRE",
            "a prefix at the end is not a value"
        );
    }

    /// The obvious masking: mark every byte of every occurrence, then
    /// replace each run of marked bytes.
    fn reference(values: &[&str], input: &[u8]) -> Vec<u8> {
        let mut marked = vec![false; input.len()];
        for v in values.iter().map(|v| v.as_bytes()) {
            for i in 0..input.len().saturating_sub(v.len() - 1) {
                if input[i..].starts_with(v) {
                    marked[i..i + v.len()].iter_mut().for_each(|m| *m = true);
                }
            }
        }
        let mut out = Vec::new();
        for (i, &b) in input.iter().enumerate() {
            match (marked[i], i > 0 && marked[i - 1]) {
                (false, _) => out.push(b),
                (true, false) => out.extend_from_slice(PLACEHOLDER),
                (true, true) => {}
            }
        }
        out
    }

    #[test]
    fn random_streams_match_the_obvious_masking() {
        // A small alphabet makes overlaps, repeats and partial matches common.
        let values = ["abab", "babba", "aaaa", "bbbbbbbb", "abcab"];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..5_000 {
            let len = (next() % 80) as usize;
            let input: Vec<u8> = (0..len).map(|_| b"abc"[(next() % 3) as usize]).collect();
            let piece = 1 + (next() % 9) as usize;
            assert_eq!(
                text(mask(&values, &input, piece)),
                text(reference(&values, &input)),
                "input {:?} in pieces of {piece}",
                String::from_utf8_lossy(&input)
            );
        }
    }

    #[test]
    fn binary_output_and_short_values_pass_untouched() {
        let input: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        assert_eq!(mask(&["\u{1}\u{2}zz"], &input, 777), input);
        let big: Vec<u8> = input.iter().copied().cycle().take(3 * CHUNK + 5).collect();
        assert_eq!(
            mask(&["\u{1}\u{2}zz"], &big, CHUNK - 1),
            big,
            "reads of a whole chunk"
        );
        assert!(Patterns::with_floor([("k", &b"abc"[..]), ("k", &b""[..])], 4).is_none());
        assert!(
            Patterns::new([("k", &b"short12"[..])]).is_none(),
            "under MIN_LEN"
        );
    }
}
