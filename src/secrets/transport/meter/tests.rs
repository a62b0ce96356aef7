use super::counts::*;
use std::collections::BTreeMap;
use std::time::Duration;

#[test]
fn requests_count_for_the_scoped_provider_by_operation_never_a_path() {
    let before = snapshot().get("metertest").cloned().unwrap_or_default();
    request(
        "Vault",
        "GET",
        "http://x/v1/secret/data/team/x",
        "200",
        Duration::from_millis(3),
    );
    {
        let _s = scope("metertest");
        request(
            "Vault",
            "GET",
            "http://x/v1/secret/data/team/x?version=2",
            "200",
            Duration::from_millis(3),
        );
        request(
            "Vault",
            "GET",
            "http://x/v1/secret/metadata/team/x",
            "403",
            Duration::from_millis(30),
        );
        request(
            "Vault",
            "POST",
            "http://x/v1/auth/jwt/login",
            "200",
            Duration::from_secs(20),
        );
        request(
            "GetSecretValue",
            "POST",
            "https://aws/",
            "timeout",
            Duration::from_millis(7),
        );
        add_current(|c| c.retries += 1);
    }
    add_current(|c| c.retries += 100); // no provider: not counted
    let now = snapshot().remove("metertest").unwrap();
    let read = &now.requests[&("kv read".into(), "GET".into(), "200".into())];
    assert_eq!(
        read.count,
        1 + before
            .requests
            .get(&("kv read".into(), "GET".into(), "200".into()))
            .map_or(0, |t| t.count)
    );
    assert_eq!(
        read.buckets[0], read.count,
        "3 ms is within the first bucket"
    );
    let login = &now.requests[&("login".into(), "POST".into(), "200".into())];
    assert_eq!(
        login.buckets[BUCKETS.len() - 1],
        0,
        "20 s is past the last bucket"
    );
    assert!(now
        .requests
        .contains_key(&("kv metadata".into(), "GET".into(), "403".into())));
    assert!(now
        .requests
        .contains_key(&("GetSecretValue".into(), "POST".into(), "timeout".into())));
    assert_eq!(now.retries, before.retries + 1);
    let text = to_json(&snapshot()).to_string();
    assert!(!text.contains("team"), "no path in the counters: {text}");
}

#[test]
fn counters_read_back_and_add_up_field_by_field() {
    let mut c = Counts::default();
    for (i, (_, v)) in scalars_mut(&mut c).into_iter().enumerate() {
        *v = i as u64 + 1;
    }
    c.requests.insert(
        ("kv read".into(), "GET".into(), "200".into()),
        Tally {
            count: 2,
            seconds: 0.5,
            buckets: [2; 14],
        },
    );
    let one = BTreeMap::from([("vault".to_owned(), c)]);
    assert_eq!(from_json(&to_json(&one)), one);
    let mut sum = one.clone();
    merge(&mut sum, one.clone());
    let doubled = &sum["vault"];
    assert_eq!(
        scalars(doubled).map(|(_, n)| n),
        scalars(&one["vault"]).map(|(_, n)| 2 * n)
    );
    assert_eq!(doubled.requests.values().next().unwrap().count, 4);
}
