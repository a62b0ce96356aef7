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
/// automaton, and an automaton (a contiguous NFA, whose memory grows with
/// the needles' bytes: 12 MB for 4,096 values and their forms, where a DFA
/// took 266 MB and four times as long to build) takes over.
const MAX_GROUPS: usize = 8;

/// The most bytes of needles (values and their forms) one matcher searches
/// for: past this, [`Patterns::checked`] refuses. A 40,000-key secrets file
/// of 40-byte tokens is about 13 MiB of them, and building its automaton
/// peaks at about 600 MB (the matcher benchmark).
pub const MAX_NEEDLE_BYTES: usize = 16 << 20;

/// One searcher over needles `offset..` of a matcher.
struct Unit {
    kind: UnitKind,
    offset: usize,
}

enum UnitKind {
    /// Teddy (SIMD), up to [`GROUP`] needles: several GB/s on any data,
    /// where an automaton's rare-byte prefilter slows to a crawl on base64
    /// or hex (every byte is common there).
    Packed(packed::Searcher),
    /// Aho-Corasick, leftmost-longest.
    Automaton(AhoCorasick),
}

impl Unit {
    /// The searchers of `needles` (numbered from `offset`): Teddy groups
    /// where they are few and the CPU has it, else one automaton.
    fn build(needles: &[Zeroizing<Vec<u8>>], offset: usize) -> Option<Vec<Arc<Unit>>> {
        if needles.len() <= GROUP * MAX_GROUPS {
            let groups: Option<Vec<Arc<Unit>>> = needles
                .chunks(GROUP)
                .enumerate()
                .map(|(i, group)| {
                    packed::Config::new()
                        .match_kind(packed::MatchKind::LeftmostLongest)
                        .builder()
                        .extend(group.iter().map(|n| &n[..]))
                        .build()
                        .map(|s| {
                            Arc::new(Unit {
                                kind: UnitKind::Packed(s),
                                offset: offset + i * GROUP,
                            })
                        })
                })
                .collect();
            if groups.is_some() {
                return groups;
            }
        }
        AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .build(needles.iter().map(|n| &n[..]))
            .ok()
            .map(|a| {
                vec![Arc::new(Unit {
                    kind: UnitKind::Automaton(a),
                    offset,
                })]
            })
    }

    /// The leftmost-longest occurrence in `buf[at..]`: start, end, needle.
    fn find(&self, buf: &[u8], at: usize) -> Option<(usize, usize, usize)> {
        let (start, end, pattern) = match &self.kind {
            UnitKind::Packed(s) => {
                let m = s.find_in(buf, aho_corasick::Span::from(at..buf.len()))?;
                (m.start(), m.end(), m.pattern().as_usize())
            }
            UnitKind::Automaton(a) => {
                let m = a.find(Input::new(buf).span(at..buf.len()))?;
                (m.start(), m.end(), m.pattern().as_usize())
            }
        };
        Some((start, end, self.offset + pattern))
    }
}

/// A search through one buffer: each next occurrence starting at `at` or
/// later. Each unit's next match is kept, so a unit is searched again only
/// once the search has gone past it (no rescans).
struct Search<'s> {
    units: &'s [Arc<Unit>],
    /// Per unit: not searched yet (`None`), or its next match from the
    /// last place it was searched from.
    next: Vec<Option<Option<(usize, usize, usize)>>>,
}

impl<'s> Search<'s> {
    fn new(units: &'s [Arc<Unit>]) -> Search<'s> {
        Search {
            units,
            next: vec![None; units.len()],
        }
    }

    /// The leftmost-longest occurrence starting at `at` or later: its
    /// start, end and needle.
    fn find(&mut self, buf: &[u8], at: usize) -> Option<(usize, usize, usize)> {
        let mut best: Option<(usize, usize, usize)> = None;
        for (unit, next) in self.units.iter().zip(&mut self.next) {
            let stale = match next {
                None => true,
                Some(Some((start, _, _))) => *start < at,
                Some(None) => false,
            };
            if stale {
                *next = Some(unit.find(buf, at));
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
/// built from them are not. One matcher can be [extended](Self::extended)
/// by more values without building its tables again.
pub struct Patterns {
    units: Vec<Arc<Unit>>,
    needles: Arc<Vec<Zeroizing<Vec<u8>>>>,
    /// More needles, after `needles` ([`extended`](Self::extended)).
    more: Vec<Zeroizing<Vec<u8>>>,
    /// For each needle: the index of its key in `keys`, and its encoding.
    labels: Vec<(usize, Encoding)>,
    keys: Vec<String>,
    /// The needles' numbers in byte order: which needles start with given
    /// bytes is a binary search (the tail held back, overlapping runs).
    sorted: Vec<u32>,
    longest: usize,
    /// Whether a byte starts some needle (a quick test for the held-back tail).
    first_bytes: [bool; 256],
}

/// Needles and, for each, its key's number and encoding.
type Needles = (Vec<Zeroizing<Vec<u8>>>, Vec<(usize, Encoding)>);

/// The needles of `values` (raw from `floor` bytes, forms from
/// [`MIN_LEN`]) that `known` does not already hold, each first of its
/// bytes, with its key's number (keys numbered from `keys`' length, added
/// to it) and encoding.
fn needles_of<'a>(
    values: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    floor: usize,
    keys: &mut Vec<String>,
    known: impl Fn(&[u8]) -> bool,
) -> Needles {
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
        all.iter()
            .map(|(_, _, f)| !known(f) && seen.insert(&f[..]))
            .collect()
    };
    let mut needles = Vec::new();
    let mut labels = Vec::new();
    for ((k, encoding, form), keep) in all.into_iter().zip(keep) {
        if keep {
            needles.push(form);
            labels.push((k, encoding));
        }
    }
    (needles, labels)
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
        let mut keys = Vec::new();
        let (needles, labels) = needles_of(values, floor, &mut keys, |_| false);
        Patterns::from_parts(needles, labels, keys)
    }

    /// As [`with_floor`](Self::with_floor), refusing values whose needles
    /// (the values and their forms) pass [`MAX_NEEDLE_BYTES`]: memory and
    /// build time stay bounded, and a tool says so instead of running out.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::error::Error::InvalidArgument) naming how
    /// many values and bytes, never a value.
    pub fn checked<'a>(
        values: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        floor: usize,
    ) -> Result<Option<Patterns>, crate::error::Error> {
        let mut keys = Vec::new();
        let (needles, labels) = needles_of(values, floor, &mut keys, |_| false);
        let bytes: usize = needles.iter().map(|n| n.len()).sum();
        if bytes > MAX_NEEDLE_BYTES {
            return Err(crate::error::Error::InvalidArgument(format!(
                "{} values to conceal make {} MiB of search forms, past the leak guard's bound \
                 of {} MiB: conceal fewer (name the keys)",
                keys.len(),
                bytes >> 20,
                MAX_NEEDLE_BYTES >> 20
            )));
        }
        Ok(Patterns::from_parts(needles, labels, keys))
    }

    fn from_parts(
        needles: Vec<Zeroizing<Vec<u8>>>,
        labels: Vec<(usize, Encoding)>,
        keys: Vec<String>,
    ) -> Option<Patterns> {
        if needles.is_empty() {
            return None;
        }
        let units = Unit::build(&needles, 0)?;
        Some(Patterns::indexed(
            units,
            Arc::new(needles),
            Vec::new(),
            labels,
            keys,
        ))
    }

    /// A matcher of these parts, its needle index made.
    fn indexed(
        units: Vec<Arc<Unit>>,
        needles: Arc<Vec<Zeroizing<Vec<u8>>>>,
        more: Vec<Zeroizing<Vec<u8>>>,
        labels: Vec<(usize, Encoding)>,
        keys: Vec<String>,
    ) -> Patterns {
        let mut p = Patterns {
            units,
            needles,
            more,
            labels,
            keys,
            sorted: Vec::new(),
            longest: 0,
            first_bytes: [false; 256],
        };
        p.index();
        p
    }

    /// This matcher and `values` (their needles not already here): this
    /// one's search tables are shared, not built again; only the new
    /// needles get theirs. `None` when nothing is new.
    pub fn extended<'a>(
        &self,
        values: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Option<Patterns> {
        let mut keys = self.keys.clone();
        let here: HashSet<&[u8]> = (0..self.needles()).map(|i| self.needle(i)).collect();
        let (added, mut labels) = needles_of(values, MIN_LEN, &mut keys, |f| here.contains(f));
        if added.is_empty() {
            return None;
        }
        let mut units = self.units.clone();
        units.extend(Unit::build(&added, self.needles())?);
        let mut more: Vec<Zeroizing<Vec<u8>>> = self.more.clone();
        more.extend(added);
        let mut all_labels = self.labels.clone();
        all_labels.append(&mut labels);
        Some(Patterns::indexed(
            units,
            Arc::clone(&self.needles),
            more,
            all_labels,
            keys,
        ))
    }

    /// Whether this matcher searches with `other`'s first tables (made by
    /// [`extended`](Self::extended) from it, not built again).
    #[cfg(test)]
    pub(crate) fn shares_tables_with(&self, other: &Patterns) -> bool {
        Arc::ptr_eq(&self.units[0], &other.units[0])
    }

    /// Whether it searches with an automaton (many needles) rather than
    /// Teddy groups.
    #[cfg(test)]
    pub(crate) fn uses_automaton(&self) -> bool {
        self.units
            .iter()
            .any(|u| matches!(u.kind, UnitKind::Automaton(_)))
    }

    /// Needle `i`.
    fn needle(&self, i: usize) -> &[u8] {
        match self.needles.get(i) {
            Some(n) => n,
            None => &self.more[i - self.needles.len()],
        }
    }

    /// Fills `sorted`, `longest` and `first_bytes`.
    fn index(&mut self) {
        let n = self.needles();
        let mut sorted: Vec<u32> = (0..n as u32).collect();
        sorted.sort_unstable_by(|&a, &b| self.needle(a as usize).cmp(self.needle(b as usize)));
        self.sorted = sorted;
        for i in 0..n {
            let (first, len) = {
                let needle = self.needle(i);
                (needle[0], needle.len())
            };
            self.first_bytes[usize::from(first)] = true;
            self.longest = self.longest.max(len);
        }
    }

    /// The needles that start with `prefix`, by number.
    fn starting_with<'s>(&'s self, prefix: &'s [u8]) -> impl Iterator<Item = &'s [u8]> + 's {
        let from = self
            .sorted
            .partition_point(|&i| self.needle(i as usize) < prefix);
        self.sorted[from..]
            .iter()
            .map(|&i| self.needle(i as usize))
            .take_while(move |n| n.starts_with(prefix))
    }

    /// How many byte strings are looked for (values and their forms).
    pub fn needles(&self) -> usize {
        self.needles.len() + self.more.len()
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
        let mut search = Search::new(&self.units);
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
    pub(super) fn spans_into(&self, buf: &[u8], covered: usize, spans: &mut Vec<(usize, usize)>) {
        spans.clear();
        if covered > 0 {
            spans.push((0, covered));
        }
        let mut at = 0;
        let mut search = Search::new(&self.units);
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
    /// extended while some needle starts inside it and ends past it (found
    /// by binary search among the needles starting with the run's rest).
    fn grow(&self, buf: &[u8], start: usize, mut end: usize) -> usize {
        let mut p = start + 1;
        while p < end {
            if self.first_bytes[usize::from(buf[p])] {
                let inside = &buf[p..end];
                let reach = self
                    .starting_with(inside)
                    .filter(|n| n.len() > inside.len() && buf[p..].starts_with(n))
                    .map(|n| p + n.len())
                    .max();
                if let Some(reach) = reach {
                    end = end.max(reach);
                }
            }
            p += 1;
        }
        end
    }

    /// Where the longest tail of `buf` that is a proper prefix of some
    /// needle starts (`buf.len()` when there is none).
    pub(super) fn hold_from(&self, buf: &[u8]) -> usize {
        let start = buf.len().saturating_sub(self.longest - 1);
        (start..buf.len())
            .find(|&i| {
                self.first_bytes[usize::from(buf[i])]
                    && self
                        .starting_with(&buf[i..])
                        .any(|n| n.len() > buf.len() - i)
            })
            .unwrap_or(buf.len())
    }
}
