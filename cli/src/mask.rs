//! Concealing secret values in a byte stream (the output of `st-secrets run`),
//! as `op run` does: every byte of every occurrence of a value is replaced,
//! a run of overlapping or adjacent occurrences by one placeholder, also when
//! an occurrence is split across reads. Everything else passes through
//! byte for byte (binary output included).
//!
//! Bytes are held back only while they could be the start of a value: the
//! longest tail of what was read that is a proper prefix of some value (at
//! most the longest value's length less one). Anything else is passed on
//! at once, so progress output is not delayed.

use aho_corasick::{packed, AhoCorasick, Input, MatchKind};
use std::io::{Read, Write};

/// What replaces a value.
pub const PLACEHOLDER: &[u8] = b"<concealed by st-secrets>";

/// Values shorter than this are not masked: they cannot be secrets worth the
/// name, and masking them would garble every `1`, `true` or `on` in the
/// output.
pub const MIN_MASKED_LEN: usize = 4;

/// A multi-value search, leftmost-longest.
enum Searcher {
    /// Teddy (SIMD), for up to 128 values on CPUs that have it: fast on any
    /// text, where the automaton's rare-byte prefilter slows to a crawl on
    /// base64 or hex output (every byte is common there).
    Packed(packed::Searcher),
    /// Aho-Corasick automaton, otherwise.
    Automaton(AhoCorasick),
}

impl Searcher {
    fn new(values: &[Vec<u8>]) -> Option<Searcher> {
        let packed = packed::Config::new()
            .match_kind(packed::MatchKind::LeftmostLongest)
            .builder()
            .extend(values)
            .build();
        if let Some(p) = packed {
            return Some(Searcher::Packed(p));
        }
        AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(values)
            .ok()
            .map(Searcher::Automaton)
    }

    /// The leftmost-longest occurrence starting at `at` or later.
    fn find(&self, buf: &[u8], at: usize) -> Option<(usize, usize)> {
        let m = match self {
            Searcher::Packed(p) => p.find_in(buf, aho_corasick::Span::from(at..buf.len())),
            Searcher::Automaton(a) => a.find(Input::new(buf).span(at..buf.len())),
        }?;
        Some((m.start(), m.end()))
    }
}

/// The values to conceal, searched for together.
pub struct Patterns {
    searcher: Searcher,
    values: Vec<Vec<u8>>,
    longest: usize,
    /// Whether a byte starts some value (a quick test for the held-back tail).
    first_bytes: [bool; 256],
}

impl Patterns {
    /// The values of at least [`MIN_MASKED_LEN`] bytes; `None` when there is
    /// nothing to mask.
    pub fn new<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Option<Patterns> {
        let mut values: Vec<Vec<u8>> = values
            .into_iter()
            .filter(|v| v.len() >= MIN_MASKED_LEN)
            .map(<[u8]>::to_vec)
            .collect();
        values.sort();
        values.dedup();
        if values.is_empty() {
            return None;
        }
        let searcher = Searcher::new(&values)?;
        let mut first_bytes = [false; 256];
        for v in &values {
            first_bytes[usize::from(v[0])] = true;
        }
        let longest = values.iter().map(Vec::len).max().unwrap_or(0);
        Some(Patterns {
            searcher,
            values,
            longest,
            first_bytes,
        })
    }

    /// The end of the occurrence run starting with the match `start..end`:
    /// extended while some value starts inside it and ends past it.
    fn grow(&self, buf: &[u8], start: usize, mut end: usize) -> usize {
        let mut p = start + 1;
        while p < end {
            for v in &self.values {
                if p + v.len() > end && buf[p..].starts_with(v) {
                    end = p + v.len();
                }
            }
            p += 1;
        }
        end
    }

    /// Where the longest tail of `buf` that is a proper prefix of some value
    /// starts (`buf.len()` when there is none).
    fn hold_from(&self, buf: &[u8]) -> usize {
        let start = buf.len().saturating_sub(self.longest - 1);
        (start..buf.len())
            .find(|&i| {
                self.first_bytes[usize::from(buf[i])]
                    && self
                        .values
                        .iter()
                        .any(|v| v.len() > buf.len() - i && v.starts_with(&buf[i..]))
            })
            .unwrap_or(buf.len())
    }
}

/// How much one read takes.
pub const CHUNK: usize = 128 * 1024;

/// A stream being masked: read into it, then pass on what it can.
pub struct Masker<'p> {
    patterns: &'p Patterns,
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
}

impl<'p> Masker<'p> {
    pub fn new(patterns: &'p Patterns) -> Masker<'p> {
        Masker {
            patterns,
            data: vec![0; CHUNK + patterns.longest],
            len: 0,
            covered: 0,
            open: false,
            spans: Vec::new(),
            out: Vec::new(),
        }
    }

    /// What was read and not passed on yet (after a pass: the bytes held
    /// back), for a masker that takes over ([`resume`](Self::resume)).
    pub fn pending(&self) -> &[u8] {
        &self.data[..self.len]
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

    /// One read from `from` (up to [`CHUNK`] bytes); 0 at its end.
    pub fn read_from(&mut self, from: &mut impl Read) -> std::io::Result<usize> {
        let n = from.read(&mut self.data[self.len..])?;
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
        self.find_spans();
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

    /// Fills `spans`: leftmost-longest search (fast: SIMD), each match grown
    /// over the values that start inside it and end past it, so overlapping
    /// occurrences are covered as a whole; covered bytes count as one.
    fn find_spans(&mut self) {
        let buf = &self.data[..self.len];
        self.spans.clear();
        if self.covered > 0 {
            self.spans.push((0, self.covered));
        }
        let mut at = 0;
        while let Some((start, end)) = self.patterns.searcher.find(buf, at) {
            let end = self.patterns.grow(buf, start, end);
            match self.spans.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => self.spans.push((start, end)),
            }
            at = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One read of `input` (shorter than a chunk), passed on to `out`.
    fn feed(m: &mut Masker<'_>, mut input: &[u8], out: &mut Vec<u8>) {
        while m.read_from(&mut input).unwrap() > 0 {}
        m.pass_on(out, false).unwrap();
    }

    /// `input` masked with `values`, fed in pieces of `piece` bytes.
    fn mask(values: &[&str], input: &[u8], piece: usize) -> Vec<u8> {
        let patterns = Patterns::new(values.iter().map(|v| v.as_bytes())).unwrap();
        let mut m = Masker::new(&patterns);
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
        let patterns = Patterns::new([&b"SECRET"[..]]).unwrap();
        let mut m = Masker::new(&patterns);
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
        assert!(Patterns::new([&b"abc"[..], &b""[..]]).is_none());
    }
}
