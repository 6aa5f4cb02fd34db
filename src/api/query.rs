//! Query-string helpers: Docker repeats keys (`changes=A&changes=B`) and
//! spells booleans as `1`, `true` or `True`.

use axum::http::Uri;

/// All query pairs, decoded, in order.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parse the query of `uri`.
    pub fn of(uri: &Uri) -> Query {
        let q = uri.query().unwrap_or("");
        Query(form_urlencoded::parse(q.as_bytes()).into_owned().collect())
    }

    /// The last value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean flag: `1`, `true`, `True`, `yes` are true.
    pub fn flag(&self, key: &str) -> bool {
        matches!(
            self.get(key).map(str::to_ascii_lowercase).as_deref(),
            Some("1" | "true" | "yes")
        )
    }
}

/// A JSON request body; an empty one is `T::default()`.
pub fn json_body<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
    what: &str,
) -> Result<T, super::ApiError> {
    if body.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| super::ApiError::bad_request(format!("bad {what}: {e}")))
}
