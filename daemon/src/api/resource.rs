//! What the resource routes (projects, groups, hosts, variables) share:
//! path ids, bodies read before authorization and checked field by field,
//! store errors mapped to the field they concern, and marker pagination
//! whose links echo the query.
//!
//! Order of checks in every handler: token (401), body size (413), the
//! object's visibility (404), the caller's role (403), the body's fields
//! (400), then the store (404, 409). Visibility before role means another
//! tenant's reader and admin get the same 404 as for an id never used.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use craton::model::OwnVars;
use craton::store::edit::{split_field, Ref};
use craton::store::StoreError;
use indexmap::IndexMap;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::error::{ApiError, FieldError};
use super::query::Query;

/// `PATCH` (partial) and `PUT` (full replace) handlers for a resource whose
/// `update(state, caller, id, raw, body, mode)` does the work, with their
/// OpenAPI annotations: route, tag, query parameters, PATCH and PUT body
/// schemas and the answer's schema (names in `crate::api::openapi`).
macro_rules! patch_and_put {
    ($update:ident, $path:tt, $tag:tt, $patch_summary:tt, $put_summary:tt, $params:ident, $patch:ident, $put:ident, $out:ident) => {
        #[utoipa::path(patch, path = $path, tag = $tag, security(("bearer" = [])),
            summary = $patch_summary,
            params(crate::api::openapi::IdPath, crate::api::openapi::$params),
            request_body = crate::api::openapi::$patch,
            responses((status = 200, description = "As written, with its variables", body = crate::api::openapi::$out),
                crate::api::openapi::WriteErrors))]
        pub async fn patch(
            State(state): State<AppState>,
            caller: Caller,
            Path(id): Path<String>,
            RawQuery(raw): RawQuery,
            body: RawBody,
        ) -> Result<Json<Value>, ApiError> {
            $update(state, caller, id, raw, body, Mode::Patch).await
        }

        #[utoipa::path(put, path = $path, tag = $tag, security(("bearer" = [])),
            summary = $put_summary,
            params(crate::api::openapi::IdPath, crate::api::openapi::$params),
            request_body = crate::api::openapi::$put,
            responses((status = 200, description = "As written, with its variables", body = crate::api::openapi::$out),
                crate::api::openapi::WriteErrors))]
        pub async fn put(
            State(state): State<AppState>,
            caller: Caller,
            Path(id): Path<String>,
            RawQuery(raw): RawQuery,
            body: RawBody,
        ) -> Result<Json<Value>, ApiError> {
            $update(state, caller, id, raw, body, Mode::Replace).await
        }
    };
}
pub(crate) use patch_and_put;

/// A request body read whole (413 past the limit, 415 if not JSON) but not
/// parsed yet, so that authorization comes first.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        super::extract::json_bytes(req, state).await.map(RawBody)
    }
}

/// A path id. Nothing has an id that is not an integer, so such a path
/// names a missing object (404), like any unused id.
pub fn parse_id(what: &str, raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound(format!("{what} {raw:?} not found")))
}

/// A JSON object body, after the unknown and server-owned field check of
/// [`super::body::parse_body`].
pub fn object_body<T>(bytes: &[u8]) -> Result<Map<String, Value>, ApiError>
where
    T: super::body::Fields + serde::de::DeserializeOwned + Into<Map<String, Value>>,
{
    super::body::parse_body::<T>(bytes).map(Into::into)
}

/// Declares a body type that is a JSON object with exactly these fields.
macro_rules! object_fields {
    ($name:ident, [$($field:literal),* $(,)?]) => {
        #[derive(serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(serde_json::Map<String, serde_json::Value>);

        impl $crate::api::body::Fields for $name {
            const FIELDS: &'static [&'static str] = &[$($field),*];
        }

        impl From<$name> for serde_json::Map<String, serde_json::Value> {
            fn from(b: $name) -> Self {
                b.0
            }
        }
    };
}
pub(crate) use object_fields;

/// How a body is applied: created, replacing every mutable field (absent
/// ones get their defaults), or patching only the fields present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Replace,
    Patch,
}

/// Reads typed fields out of a JSON object, collecting one error per bad
/// field so that a 400 names all of them.
pub struct FieldReader<'a> {
    obj: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An integer as JSON Schema counts them: `3` and also `3.0` (a number
/// with no fraction), as the OpenAPI document promises for integer fields.
fn integer(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        let f = v.as_f64()?;
        // i64::MAX is not exactly representable: stay strictly below 2^63.
        (f.fract() == 0.0 && f >= -9.223_372_036_854_776e18 && f < 9.223_372_036_854_776e18).then_some(f as i64)
    })
}

impl<'a> FieldReader<'a> {
    pub fn new(obj: &'a Map<String, Value>) -> Self {
        FieldReader { obj, errors: Vec::new() }
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError { field: field.to_string(), message: message.into() });
    }

    fn typed<T>(&mut self, field: &str, want: &str, f: impl FnOnce(&Value) -> Option<T>) -> Option<T> {
        let v = self.obj.get(field)?;
        let out = f(v);
        if out.is_none() {
            let got = type_name(v);
            self.error(field, format!("must be {want}, not {got}"));
        }
        out
    }

    pub fn string(&mut self, field: &str) -> Option<String> {
        self.typed(field, "a string", |v| v.as_str().map(str::to_string))
    }

    pub fn nullable_string(&mut self, field: &str) -> Option<Option<String>> {
        self.typed(field, "a string or null", |v| match v {
            Value::Null => Some(None),
            Value::String(s) => Some(Some(s.clone())),
            _ => None,
        })
    }

    pub fn bool(&mut self, field: &str) -> Option<bool> {
        self.typed(field, "a boolean", Value::as_bool)
    }

    pub fn nullable_int(&mut self, field: &str) -> Option<Option<i64>> {
        self.typed(field, "an integer or null", |v| match v {
            Value::Null => Some(None),
            other => integer(other).map(Some),
        })
    }

    pub fn strings(&mut self, field: &str) -> Option<Vec<String>> {
        self.typed(field, "an array of strings", |v| {
            v.as_array()?.iter().map(|s| s.as_str().map(str::to_string)).collect()
        })
    }

    fn as_ref(v: &Value) -> Option<Ref> {
        match v {
            Value::String(s) => Some(Ref::Name(s.clone())),
            other => integer(other).map(Ref::Id),
        }
    }

    /// An array of names (strings) or ids (integers).
    pub fn refs(&mut self, field: &str) -> Option<Vec<Ref>> {
        self.typed(field, "an array of names (strings) or ids (integers)", |v| {
            v.as_array()?.iter().map(Self::as_ref).collect()
        })
    }

    /// A name (string), an id (integer) or null.
    pub fn nullable_ref(&mut self, field: &str) -> Option<Option<Ref>> {
        self.typed(field, "a name (string), an id (integer) or null", |v| match v {
            Value::Null => Some(None),
            other => Self::as_ref(other).map(Some),
        })
    }

    /// `value`, or the default for `mode`: on replace an absent field is
    /// reset, on create and patch it is left to the store (default or
    /// unchanged).
    pub fn or_default<T>(&self, mode: Mode, value: Option<T>, default: impl FnOnce() -> T) -> Option<T> {
        match (value, mode) {
            (Some(v), _) => Some(v),
            (None, Mode::Replace) => Some(default()),
            (None, _) => None,
        }
    }

    /// Notes a missing required field (`value` is None and nothing was sent).
    pub fn require<T>(&mut self, field: &str, value: Option<T>) -> Option<T> {
        if value.is_none() && !self.obj.contains_key(field) {
            self.error(field, "is required");
        }
        value
    }

    /// Records `check`'s complaint about `field`, if any.
    pub fn check(&mut self, field: &str, check: Result<(), String>) {
        if let Err(m) = check {
            self.error(field, m);
        }
    }

    /// Records a store validator's refusal under the field it names.
    pub fn validated<T>(&mut self, check: Result<T, StoreError>) -> Option<T> {
        match check {
            Ok(v) => Some(v),
            Err(StoreError::Invalid(m)) => {
                match m.split_once(": ").filter(|(f, _)| !f.is_empty() && !f.contains(' ')) {
                    Some((field, message)) => self.error(field, message),
                    None => self.error("body", m),
                }
                None
            }
            Err(other) => {
                self.error("body", other.to_string());
                None
            }
        }
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::fields(self.errors))
        }
    }
}

/// A store error as the API answers it; a refusal that names one of
/// `fields` becomes a 400 detail for that field.
pub fn store_error(e: StoreError, fields: &[&str]) -> ApiError {
    if let StoreError::Invalid(m) = &e {
        if let Some((field, message)) = split_field(m, fields) {
            return ApiError::fields(vec![FieldError { field: field.to_string(), message: message.to_string() }]);
        }
    }
    ApiError::from(e)
}

/// A JSON value of something serializable (our own records, which always
/// serialize).
pub fn to_json<T: Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::internal(format!("serializing a response: {e}")))
}

/// `record` with `variables` added.
pub fn with_vars<T: Serialize, V: Serialize>(record: &T, vars: Option<&V>) -> Result<Value, ApiError> {
    let mut v = to_json(record)?;
    if let (Some(vars), Value::Object(m)) = (vars, &mut v) {
        m.insert("variables".into(), to_json(vars)?);
    }
    Ok(v)
}

/// An owner's own variables as a JSON object (values copied verbatim).
pub fn vars_map(vars: &OwnVars) -> IndexMap<&str, &RawValue> {
    vars.iter().map(|(k, v)| (k.as_str(), &*v.value)).collect()
}

/// Where a new object of a collection can be read; with the `project` the
/// request named (root's `?project=`), since ids are looked up in it.
pub fn location(collection: &str, id: i64, project: Option<&str>) -> String {
    match project {
        Some(p) => {
            let q: String = form_urlencoded::Serializer::new(String::new()).append_pair("project", p).finish();
            format!("{collection}/{id}?{q}")
        }
        None => format!("{collection}/{id}"),
    }
}

/// 201 with a Location header.
pub fn created(location: String, body: Value) -> Response {
    (StatusCode::CREATED, [(header::LOCATION, location)], Json(body)).into_response()
}

/// Default and bounds of `limit`: out-of-range values are clamped, and one
/// that is not a number is taken as the default, never refused.
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 1000;

/// Paging parameters common to every list.
pub const PAGE_PARAMS: [&str; 2] = ["limit", "marker"];

#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: usize,
    /// The last id of the previous page: this page starts after it.
    pub marker: Option<i64>,
}

impl Page {
    pub fn from_query(q: &Query) -> Result<Page, ApiError> {
        let limit = match q.get("limit").map(|l| l.trim().parse::<i64>()) {
            Some(Ok(n)) => n.clamp(1, MAX_LIMIT as i64) as usize,
            _ => DEFAULT_LIMIT,
        };
        let marker = q
            .get("marker")
            .map(|m| {
                m.trim().parse::<i64>().map_err(|_| {
                    ApiError::fields(vec![FieldError {
                        field: "marker".into(),
                        message: format!("{m:?} is not an id (the last id of the previous page)"),
                    }])
                })
            })
            .transpose()?;
        Ok(Page { limit, marker })
    }
}

/// One page of a list: indexes of the items, and where the next and
/// previous pages start.
#[derive(Debug, Default)]
pub struct Window {
    pub items: Vec<usize>,
    /// Marker of the next page; `None` on the last page.
    pub next: Option<i64>,
    /// `None`: no previous page. `Some(None)`: the previous page is the
    /// first (no marker). `Some(Some(m))`: it starts after `m`.
    pub prev: Option<Option<i64>>,
}

/// Pages through `ids` (ascending) keeping the indexes for which `matches`
/// holds. Sorting by id makes pages stable under inserts and deletes, and a
/// marker always moves forward, so following `next` terminates.
pub fn window(ids: &[i64], page: Page, mut matches: impl FnMut(usize) -> bool) -> Window {
    let start = page.marker.map_or(0, |m| ids.partition_point(|&id| id <= m));
    let mut w = Window::default();
    let mut i = start;
    while i < ids.len() && w.items.len() < page.limit {
        if matches(i) {
            w.items.push(i);
        }
        i += 1;
    }
    if w.items.len() == page.limit && (i..ids.len()).any(&mut matches) {
        w.next = w.items.last().map(|&l| ids[l]);
    }
    if page.marker.is_some() {
        let mut before = (0..start).rev().filter(|&j| matches(j));
        let mut taken = 0;
        for _ in before.by_ref().take(page.limit) {
            taken += 1;
        }
        if taken > 0 {
            w.prev = Some(before.next().map(|j| ids[j]));
        }
    }
    w
}

fn page_url(path: &str, filters: &[(String, String)], limit: usize, marker: Option<i64>) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in filters {
        s.append_pair(k, v);
    }
    s.append_pair("limit", &limit.to_string());
    if let Some(m) = marker {
        s.append_pair("marker", &m.to_string());
    }
    format!("{path}?{}", s.finish())
}

/// `{"self", "next"?, "prev"?}`, each echoing every parameter of the
/// request (in its order) with the effective limit.
pub fn links(path: &str, q: &Query, page: Page, w: &Window) -> Value {
    let filters: Vec<(String, String)> =
        q.0.iter().filter(|(k, _)| !PAGE_PARAMS.contains(&k.as_str())).cloned().collect();
    let mut links = Map::new();
    links.insert("self".into(), json!(page_url(path, &filters, page.limit, page.marker)));
    if let Some(next) = w.next {
        links.insert("next".into(), json!(page_url(path, &filters, page.limit, Some(next))));
    }
    if let Some(prev) = w.prev {
        links.insert("prev".into(), json!(page_url(path, &filters, page.limit, prev)));
    }
    Value::Object(links)
}

/// A page of a newest-first list that was read with `page.limit + 1`
/// rows (the extra one says whether there is a next page): the rows cut to
/// the page, and `{"self", "next"?}` echoing the request's other
/// parameters, `next` starting after the page's last row (`id_of`).
pub fn marker_page<T>(
    path: &str,
    q: &Query,
    page: Page,
    mut rows: Vec<T>,
    id_of: impl Fn(&T) -> i64,
) -> (Vec<T>, Value) {
    let more = rows.len() > page.limit;
    rows.truncate(page.limit);
    let filters: Vec<(String, String)> =
        q.0.iter().filter(|(k, _)| !PAGE_PARAMS.contains(&k.as_str())).cloned().collect();
    let mut links = Map::new();
    links.insert("self".into(), json!(page_url(path, &filters, page.limit, page.marker)));
    if let Some(last) = rows.last().filter(|_| more) {
        links.insert("next".into(), json!(page_url(path, &filters, page.limit, Some(id_of(last)))));
    }
    (rows, Value::Object(links))
}

/// The list response shape.
pub fn list_body(items: Vec<Value>, links: Value) -> Json<Value> {
    Json(json!({ "items": items, "links": links }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_terminate_and_go_back() {
        let ids: Vec<i64> = vec![2, 4, 6, 8, 10];
        let all = |_: usize| true;
        let w = window(&ids, Page { limit: 2, marker: None }, all);
        assert_eq!((w.items.clone(), w.next, w.prev), (vec![0, 1], Some(4), None));
        let w = window(&ids, Page { limit: 2, marker: Some(4) }, all);
        assert_eq!((w.items.clone(), w.next, w.prev), (vec![2, 3], Some(8), Some(None)));
        let w = window(&ids, Page { limit: 2, marker: Some(8) }, all);
        assert_eq!((w.items.clone(), w.next, w.prev), (vec![4], None, Some(Some(4))));
        // Exactly full last page: no next.
        let w = window(&ids, Page { limit: 5, marker: None }, all);
        assert_eq!((w.items.len(), w.next), (5, None));
        // Filtered: only even indexes.
        let w = window(&ids, Page { limit: 1, marker: Some(2) }, |i| i % 2 == 0);
        assert_eq!((w.items.clone(), w.next, w.prev), (vec![2], Some(6), Some(None)));
        // A marker past the end: empty, with a way back.
        let w = window(&ids, Page { limit: 2, marker: Some(99) }, all);
        assert_eq!((w.items.len(), w.next, w.prev), (0, None, Some(Some(6))));
    }
}

/// `GET` of a list of the caller's project that is read whole and paged by
/// id (`limit` + `marker`): schedules, webhook rules.
pub async fn project_list<T: Send + 'static>(
    state: &crate::state::AppState,
    caller: super::auth::Caller,
    raw: Option<String>,
    path: &str,
    load: fn(&mut craton::store::DbConn, i64) -> Result<Vec<T>, StoreError>,
    id: fn(&T) -> i64,
    to_json: fn(&T) -> Value,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project", "limit", "marker"])?;
    let page = Page::from_query(&q)?;
    let requested = q.get("project").map(str::to_string);
    let all = state
        .db(move |conn| {
            let project = caller.project(conn, requested.as_deref())?;
            Ok(load(conn, project.id)?)
        })
        .await?;
    let ids: Vec<i64> = all.iter().map(id).collect();
    let w = window(&ids, page, |_| true);
    let items = w.items.iter().map(|&i| to_json(&all[i])).collect();
    Ok(list_body(items, links(path, &q, page, &w)))
}

/// Object `id` of the caller's project (`?project=` for root), read by
/// `load`; another project's is not found.
pub async fn in_project<T: Send + 'static>(
    state: &crate::state::AppState,
    caller: super::auth::Caller,
    q: &Query,
    id: i64,
    load: fn(&mut craton::store::DbConn, Option<i64>, i64) -> Result<T, StoreError>,
) -> Result<T, ApiError> {
    let requested = q.get("project").map(str::to_string);
    state
        .db(move |conn| {
            let project = caller.project(conn, requested.as_deref())?;
            Ok(load(conn, Some(project.id), id)?)
        })
        .await
}

/// `DELETE` of object `id` (named `what` in errors) of the caller's
/// project: another project's object is not found (whatever the role),
/// then the editor role, then `delete`. 204.
pub async fn delete_in_project<T: Send + 'static>(
    state: &crate::state::AppState,
    caller: super::auth::Caller,
    raw: Option<String>,
    what: &'static str,
    id: &str,
    get: fn(&mut craton::store::DbConn, Option<i64>, i64) -> Result<T, StoreError>,
    delete: fn(&mut craton::store::DbConn, i64, i64) -> Result<(), StoreError>,
) -> Result<StatusCode, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project"])?;
    let id = parse_id(what, id)?;
    state
        .db(move |conn| {
            let project = caller.project(conn, q.get("project"))?;
            get(conn, Some(project.id), id)?;
            caller.require(craton::store::tokens::Role::Editor)?;
            Ok(delete(conn, project.id, id)?)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An optional body of one field (`{"mode": ...}` of a cancel, `{"comment":
/// ...}` of an approval): empty or whitespace, or a JSON object with no
/// other key. The field's value, None when absent or null.
pub fn one_field_body(body: &[u8], name: &str) -> Result<Option<Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(mut obj) = v else { return Err(ApiError::bad("the body must be a JSON object")) };
    if let Some(k) = obj.keys().find(|k| *k != name) {
        return Err(ApiError::fields(vec![FieldError {
            field: k.clone(),
            message: format!("unknown field (expected: {name})"),
        }]));
    }
    Ok(obj.remove(name).filter(|v| !v.is_null()))
}
