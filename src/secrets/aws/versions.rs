//! The versions of a secret as `DescribeSecret` lists them.

use crate::error::shorten;
use crate::secrets::aws_identity::wire::ServiceError;
use crate::secrets::remote::rotation::Versions;
use crate::secrets::transport::http::Response;
use crate::secrets::transport::Fetched;

/// The versions in a `DescribeSecret` answer (`VersionIdsToStages`): the
/// `AWSCURRENT` one in force (none when the secret is scheduled for
/// deletion: `DeletedDate`), `AWSPENDING` then `AWSPREVIOUS` beside it;
/// "absent" for `ResourceNotFoundException`; the service's error with the
/// status otherwise (an answer that is not JSON as a 502).
pub(crate) fn versions_from(
    name: &str,
    r: Response,
) -> Result<Fetched<Versions>, (ServiceError, u16)> {
    if r.status != 200 {
        let e = ServiceError::parse(r.body.expose(), r.header("x-amzn-errortype"));
        if e.code == "ResourceNotFoundException" {
            return Ok(Fetched::Absent);
        }
        return Err((e, r.status));
    }
    let Some(serde_json::Value::Object(doc)) = r.json() else {
        let e = ServiceError {
            code: "InvalidResponse".into(),
            message: format!(
                "the answer for secret '{}' is not a JSON object",
                shorten(name)
            ),
        };
        return Err((e, 502));
    };
    let stages: Vec<(String, Vec<String>)> = doc
        .get("VersionIdsToStages")
        .and_then(serde_json::Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(id, s)| {
                    let s = s.as_array().map_or(&[][..], Vec::as_slice);
                    (
                        id.clone(),
                        s.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let with = |stage: &str| {
        stages
            .iter()
            .find(|(_, s)| s.iter().any(|x| x == stage))
            .map(|(id, _)| id.clone())
    };
    let deleted = doc.get("DeletedDate").is_some_and(|d| !d.is_null());
    Ok(Fetched::Found(Versions {
        current: with("AWSCURRENT").filter(|_| !deleted),
        beside: ["AWSPENDING", "AWSPREVIOUS"]
            .iter()
            .filter_map(|s| with(s))
            .collect(),
        stages,
    }))
}
