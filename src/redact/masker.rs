//! The [`Masker`]: a stream masked with a [`Patterns`] matcher, the bytes
//! that could start a value held back until the next read.

use super::matcher::{Patterns, PLACEHOLDER};
use std::io::{Read, Write};
use std::sync::Arc;

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
            data: vec![0; CHUNK + patterns.longest()],
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
