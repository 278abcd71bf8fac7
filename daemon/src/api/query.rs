//! Query strings: repeated keys (`vars=a:1&vars=b:2`) and a 400 naming
//! every unknown parameter, which serde-based extractors do not give, and
//! one naming every value with a NUL character (which PostgreSQL cannot
//! store or compare).

use super::error::{ApiError, FieldError};

#[derive(Debug, Default)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Query, ApiError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let unknown: Vec<FieldError> = pairs
            .iter()
            .filter(|(k, _)| !allowed.contains(&k.as_str()))
            .map(|(k, _)| FieldError {
                field: k.clone(),
                message: format!("unknown query parameter (allowed: {})", allowed.join(", ")),
            })
            .collect();
        if !unknown.is_empty() {
            return Err(ApiError::fields(unknown));
        }
        let nul: Vec<FieldError> = pairs
            .iter()
            .filter(|(_, v)| v.contains('\0'))
            .map(|(k, _)| FieldError { field: k.clone(), message: super::body::NUL_MESSAGE.into() })
            .collect();
        if !nul.is_empty() {
            return Err(ApiError::fields(nul));
        }
        Ok(Query(pairs))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None => Ok(false),
            Some("" | "1" | "true" | "yes") => Ok(true),
            Some("0" | "false" | "no") => Ok(false),
            Some(other) => Err(ApiError::fields(vec![FieldError {
                field: key.to_string(),
                message: format!("{other:?} is not a boolean (true/false)"),
            }])),
        }
    }

    /// `vars=key:json_value` terms (a value that is not JSON is a string).
    pub fn var_filters(&self) -> Result<Vec<(String, serde_json::Value)>, ApiError> {
        self.all("vars")
            .map(|term| {
                let (k, v) = term.split_once(':').ok_or_else(|| {
                    ApiError::fields(vec![FieldError {
                        field: "vars".into(),
                        message: format!("{term:?} is not key:json_value"),
                    }])
                })?;
                if k.is_empty() {
                    return Err(ApiError::fields(vec![FieldError {
                        field: "vars".into(),
                        message: "empty key".into(),
                    }]));
                }
                let value = serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.to_string()));
                Ok((k.to_string(), value))
            })
            .collect()
    }
}
