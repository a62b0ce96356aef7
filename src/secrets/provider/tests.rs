use super::*;

#[test]
fn a_json_text_read_straight_reads_as_its_document() {
    let describe = |m: &SecretMap| {
        let mut keys = m.keys();
        keys.sort();
        let values: Vec<String> = keys
            .iter()
            .map(|k| m.resolve(k).unwrap().1.expose().to_owned())
            .collect();
        (
            keys,
            values,
            m.describe(),
            m.resolve("hf-token").map(|(k, _)| k.to_owned()),
        )
    };
    for text in [
        r#"{"HF_TOKEN": "a\u00e9\n", "hf_token": "b", "hf-token": "c"}"#,
        r#"{"N": 123456789012345678901234567890, "F": 1.50, "E": 1e3, "B": true}"#,
        r#"{"Z": null, "L": [1, "x"], "O": {"k": "v"}, "S": "s"}"#,
        r#" { } "#,
    ] {
        let straight = SecretMap::from_json_text(text).unwrap().unwrap();
        let serde_json::Value::Object(map) = serde_json::from_str(text).unwrap() else {
            panic!("{text}")
        };
        assert_eq!(
            describe(&straight),
            describe(&SecretMap::from_json_object(map)),
            "{text}"
        );
    }
    // A repeated key is left to the general way (the last value wins).
    assert!(SecretMap::from_json_text(r#"{"A": "1", "A": "2"}"#)
        .unwrap()
        .is_none());
    assert!(SecretMap::from_json_text(r#"{"A": {}, "A": "2"}"#)
        .unwrap()
        .is_none());
    for bad in [
        r#"["A"]"#,
        r#""A""#,
        r#"{"A": "1"} x"#,
        r#"{"A": "1""#,
        "{\"A\": 01}",
    ] {
        assert!(SecretMap::from_json_text(bad).is_err(), "{bad}");
    }
}

#[test]
fn scalars_are_kept_and_the_rest_skipped() {
    let v: serde_json::Value = serde_json::from_str(
        r#"{"HF_TOKEN": "hf_x", "PORT": 8080, "ON": true, "NESTED": {"a": "b"}, "NONE": null}"#,
    )
    .unwrap();
    let serde_json::Value::Object(map) = v else {
        unreachable!()
    };
    let m = SecretMap::from_json_object(map);
    assert_eq!(m.len(), 3);
    assert_eq!(m.resolve("hf-token").unwrap().1.expose(), "hf_x");
    assert_eq!(m.resolve("PORT").unwrap().1.expose(), "8080");
    assert_eq!(m.resolve("ON").unwrap().1.expose(), "true");
    assert!(m.resolve("NESTED").is_none());
    assert_eq!(
        m.describe(),
        "3 keys; skipped non-scalar or null values (not secrets): NESTED, NONE"
    );
}

#[test]
fn keys_are_normalized_as_simpletuner_does() {
    assert_eq!(normalize_key("replicate-api-token"), "REPLICATE_API_TOKEN");
    assert_eq!(normalize_key("hf.token"), "HF_TOKEN");
    assert_eq!(normalize_key("HF_TOKEN"), "HF_TOKEN");
}
