//! The YAML reader of the secrets file: a document as PyYAML's `safe_load`
//! reads it (merge keys applied, integers of any size), with every resource
//! a small file could inflate bounded.
//!
//! - **Aliases.** A YAML file can repeat a large anchored node through many
//!   aliases (`*big` 10,000 times): a 115 KB file expanded to 645 MB. What the
//!   parser hands over is counted as it is built (each scalar's bytes, plus
//!   one per node), and a document that grows beyond the file's own size plus
//!   [`ALIAS_ALLOWANCE`] is refused with `ST_PARSE` naming the limit. Without
//!   aliases a document never grows beyond its file, so only aliases can
//!   reach the limit.
//! - **Nesting.** At most 128 levels (the YAML library's limit), refused
//!   with `ST_PARSE` naming it.
//! - **Integers** beyond 64 bits (PyYAML reads any size) are kept as their
//!   decimal digits, as a string; a file holding one stays readable.

use crate::error::Error;
use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess};
use serde::de::{VariantAccess, Visitor};
use std::cell::Cell;
use std::fmt;
use std::path::Path;
use yaml_serde::value::{Tag, TaggedValue};
use yaml_serde::{Mapping, Number, Value};

/// How much larger than its file a YAML document may grow through aliases:
/// 1 MiB (counting each scalar's bytes and one per node).
pub(crate) const ALIAS_ALLOWANCE: u64 = 1 << 20;

/// The nesting limit of the YAML library, named in its error.
const NESTING_LIMIT: usize = 128;

/// Why a YAML text was refused.
#[derive(Debug)]
pub(in crate::secrets::file) enum YamlError {
    /// Not YAML (with the line and column when known).
    Syntax(Option<(usize, usize)>),
    /// Expanded beyond the file's size plus [`ALIAS_ALLOWANCE`].
    Expansion,
    /// Nested deeper than [`NESTING_LIMIT`].
    Nesting,
    /// A merge key (`<<`) whose value is not a mapping or a list of them.
    Merge,
}

impl YamlError {
    /// The error for the file at `path`; never any of its content.
    pub(in crate::secrets::file) fn into_error(self, path: &Path) -> Error {
        Error::Parse(format!("{}: {}", path.display(), self.describe()))
    }

    /// What is wrong, without any of the text.
    pub(in crate::secrets::file) fn describe(&self) -> String {
        match self {
            YamlError::Syntax(Some((line, column))) => {
                format!("invalid YAML at line {line}, column {column}")
            }
            YamlError::Syntax(None) => "invalid YAML".to_owned(),
            YamlError::Expansion => format!(
                "the YAML expands through its aliases (*name) to more than its size plus {} \
                 MiB; refused (a YAML bomb?)",
                ALIAS_ALLOWANCE >> 20
            ),
            YamlError::Nesting => {
                format!("the YAML is nested deeper than {NESTING_LIMIT} levels; refused")
            }
            YamlError::Merge => {
                "a merge key (<<) must hold a mapping or a list of mappings".to_owned()
            }
        }
    }
}

/// Parses `text` into a value, merge keys applied.
pub(in crate::secrets::file) fn parse(text: &str) -> Result<Value, YamlError> {
    let budget = Budget::for_text(text);
    let deserializer = yaml_serde::Deserializer::from_str(text);
    let mut value = Seed(&budget)
        .deserialize(deserializer)
        .map_err(|e| budget.classify(&e))?;
    value.apply_merge().map_err(|_| YamlError::Merge)?;
    Ok(value)
}

/// Every document of `text` (a stream of `---` documents), with the same
/// limits, the growth allowance shared by them all; merge keys are left as
/// they are (`inject` fills templates, which keep their merge keys).
pub(in crate::secrets::file) fn parse_documents(text: &str) -> Result<Vec<Value>, YamlError> {
    let budget = Budget::for_text(text);
    yaml_serde::Deserializer::from_str(text)
        .map(|doc| {
            Seed(&budget)
                .deserialize(doc)
                .map_err(|e| budget.classify(&e))
        })
        .collect()
}

/// What is left of a document's growth allowance.
struct Budget {
    left: Cell<u64>,
    exceeded: Cell<bool>,
}

impl Budget {
    /// The allowance of `text`: its size plus [`ALIAS_ALLOWANCE`].
    fn for_text(text: &str) -> Budget {
        Budget {
            left: Cell::new((text.len() as u64).saturating_add(ALIAS_ALLOWANCE)),
            exceeded: Cell::new(false),
        }
    }

    /// Why the YAML library refused a text this budget was spent on.
    fn classify(&self, e: &yaml_serde::Error) -> YamlError {
        if self.exceeded.get() {
            return YamlError::Expansion;
        }
        // The library's own limits, by their fixed texts (no content).
        let what = e.to_string();
        if what.starts_with("repetition limit exceeded") {
            return YamlError::Expansion;
        }
        if what.starts_with("recursion limit exceeded") {
            return YamlError::Nesting;
        }
        YamlError::Syntax(e.location().map(|at| (at.line(), at.column())))
    }

    fn spend<E: de::Error>(&self, cost: usize) -> Result<(), E> {
        let cost = cost as u64;
        match self.left.get().checked_sub(cost) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => {
                self.exceeded.set(true);
                Err(E::custom("expansion limit"))
            }
        }
    }
}

/// Builds a [`Value`] as `yaml_serde`'s own deserializer does, spending the
/// budget as it goes.
#[derive(Clone, Copy)]
struct Seed<'b>(&'b Budget);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        self.0.spend(1)?;
        Ok(Value::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
        self.0.spend(1)?;
        Ok(Value::Number(i.into()))
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        self.0.spend(1)?;
        Ok(Value::Number(u.into()))
    }

    fn visit_i128<E: de::Error>(self, i: i128) -> Result<Value, E> {
        match i64::try_from(i) {
            Ok(i) => self.visit_i64(i),
            Err(_) => self.visit_string(i.to_string()),
        }
    }

    fn visit_u128<E: de::Error>(self, u: u128) -> Result<Value, E> {
        match u64::try_from(u) {
            Ok(u) => self.visit_u64(u),
            Err(_) => self.visit_string(u.to_string()),
        }
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
        self.0.spend(1)?;
        Ok(Value::Number(Number::from(f)))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        self.0.spend(s.len().saturating_add(1))?;
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        self.0.spend(s.len().saturating_add(1))?;
        Ok(Value::String(s))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.0.spend(1)?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.0.spend(1)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Sequence(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.0.spend(1)?;
        let mut out = Mapping::new();
        while let Some(key) = map.next_key_seed(self)? {
            let value = map.next_value_seed(self)?;
            out.insert(key, value);
        }
        Ok(Value::Mapping(out))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        // A tagged node (`!tag value`).
        let (tag, contents): (String, _) = data.variant()?;
        self.0.spend(tag.len().saturating_add(1))?;
        let value = contents.newtype_variant_seed(self)?;
        Ok(Value::Tagged(Box::new(TaggedValue {
            tag: Tag::new(tag),
            value,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> String {
        match parse(text) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.into_error(Path::new("s.yaml")).to_string(),
        }
    }

    #[test]
    fn an_alias_bomb_under_the_size_limit_is_refused_early() {
        // One 64 KiB anchor, 10,000 aliases: 115 KB of file, 640 MB expanded.
        let mut text = format!("big: &b \"{}\"\n", "x".repeat(64 << 10));
        for i in 0..10_000 {
            text.push_str(&format!("k{i}: *b\n"));
        }
        assert!(text.len() < 200_000);
        let e = refused(&text);
        assert!(
            e.contains("expands through its aliases") && e.contains("1 MiB"),
            "{e}"
        );
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut text = String::from("a0: &a0 [\"lol\"]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            text.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 10].join(", ")));
        }
        assert!(refused(&text).contains("aliases"));
    }

    #[test]
    fn modest_aliases_and_merge_keys_are_read() {
        let text = "defaults: &d {REGION: eu, TIER: gold}\nprod:\n  <<: *d\n  TIER: platinum\n\
                    <<: *d\nTOKEN: t\n";
        let v = parse(text).unwrap();
        assert_eq!(v["prod"]["REGION"], "eu");
        assert_eq!(
            v["prod"]["TIER"], "platinum",
            "a key of its own wins over the merge"
        );
        assert_eq!(v["REGION"], "eu", "a top-level merge brings its keys");
        assert_eq!(v["TOKEN"], "t");
        assert!(v.get("<<").is_none());
    }

    #[test]
    fn integers_of_any_size_keep_their_digits() {
        let v =
            parse("a: 123456789012345678901234567890\nb: -99999999999999999999\nc: 7\n").unwrap();
        assert_eq!(v["a"], "123456789012345678901234567890");
        assert_eq!(v["b"], "-99999999999999999999");
        assert_eq!(v["c"], 7);
    }

    #[test]
    fn nesting_beyond_the_limit_is_named() {
        let text = format!("a: {}1{}\n", "[".repeat(200), "]".repeat(200));
        assert!(refused(&text).contains("nested deeper than 128"));
    }

    #[test]
    fn a_bad_merge_is_named_and_syntax_errors_give_the_place() {
        assert!(refused("a: 1\n<<: 5\n").contains("merge key"));
        let e = refused("a: [1, 2\nb: c\n");
        assert!(e.contains("invalid YAML at line"), "{e}");
    }
}
