//! Temporary stand-in until the Go-template evaluator lands.

/// Template error.
#[derive(Debug, thiserror::Error)]
#[error("template: {0}")]
pub struct TemplateError(String);

/// A parsed template.
pub struct Template(String);

impl Template {
    /// Parse.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        Ok(Template(src.to_string()))
    }
    /// Render.
    pub fn render(&self, data: &serde_json::Value) -> Result<String, TemplateError> {
        let path = self
            .0
            .trim_start_matches("{{")
            .trim_end_matches("}}")
            .trim();
        let mut v = data;
        for part in path
            .trim_start_matches('.')
            .split('.')
            .filter(|p| !p.is_empty())
        {
            v = &v[part];
        }
        Ok(match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}
