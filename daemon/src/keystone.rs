//! Keystone authentication (`cratond serve --auth keystone`): OpenStack
//! operators already hold Keystone tokens, so cratond accepts them beside its
//! own `craton_…` tokens. A token is validated with Keystone v3 (`GET
//! /v3/auth/tokens`, `X-Subject-Token`, authorised by cratond's own service
//! token), its project mapped to a Craton project and its roles to reader,
//! editor or admin (`[keystone]` in the config file, docs/keystone.md).
//!
//! Results are cached for `cache_s` (never past the token's `expires_at`),
//! as keystonemiddleware does: that is what makes Keystone affordable on
//! every request, and it is also why a revoked token keeps working until
//! its entry expires. Invalid tokens are cached too, briefly, so a client
//! retrying a bad token does not hammer Keystone. The cache is keyed by the
//! token's SHA-256, never the token; tokens and the service password appear
//! in no log, error or Debug output.
//!
//! The HTTP client is the project's one blocking client (rustls,
//! `craton::http_client`), run on tokio's blocking threads, not the
//! database pool's permits.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use craton::config::KeystoneConfig;
use craton::store::tokens::{self, Role};
use serde_json::{json, Value};

use crate::api::error::ApiError;

/// How long a token Keystone called invalid is refused without asking
/// again (at most `cache_s`): a token never becomes valid later, so this
/// only bounds the cache's memory.
const NEGATIVE_TTL: Duration = Duration::from_secs(10);

/// Entries beyond this make the cache drop its expired ones first.
const MAX_ENTRIES: usize = 10_000;

/// Who a Keystone token belongs to, as Keystone said, and what Craton makes
/// of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeystoneIdentity {
    pub user_id: String,
    pub user_name: String,
    pub project_id: String,
    pub project_name: String,
    /// The Craton project the Keystone project maps to.
    pub craton_project: String,
    pub role: Role,
}

/// The settings, checked: role names parsed, the password present.
pub struct Settings {
    /// Ends in `/v3`, no trailing slash.
    base: String,
    username: String,
    password: String,
    user_domain: String,
    project: String,
    project_domain: String,
    cache: Duration,
    timeout: Duration,
    cacert: Option<std::path::PathBuf>,
    token_domain: String,
    projects: BTreeMap<String, String>,
    roles: BTreeMap<String, Role>,
}

impl Settings {
    /// From `[keystone]`; `password` (from `CRATON_KEYSTONE_PASSWORD`)
    /// wins over the file's.
    pub fn from_config(c: &KeystoneConfig, password: Option<String>) -> Result<Settings, String> {
        let password = password
            .or_else(|| c.password.clone())
            .filter(|p| !p.is_empty())
            .ok_or("keystone: no service password: set CRATON_KEYSTONE_PASSWORD or keystone.password")?;
        let url = c.url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("keystone.url must be an http:// or https:// URL, not {url:?}"));
        }
        let base = if url.ends_with("/v3") { url.to_string() } else { format!("{url}/v3") };
        let default_roles = [("reader", "reader"), ("member", "editor"), ("admin", "admin")];
        let named: BTreeMap<String, String> = match &c.roles {
            Some(r) => r.clone(),
            None => default_roles.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        let mut roles = BTreeMap::new();
        for (keystone_role, craton_role) in named {
            let role = Role::parse(&craton_role).ok().filter(|r| *r != Role::Root).ok_or_else(|| {
                format!("keystone.roles.{keystone_role}: {craton_role:?} is not reader, editor or admin")
            })?;
            roles.insert(keystone_role, role);
        }
        Ok(Settings {
            base,
            username: c.username.clone(),
            password,
            user_domain: c.user_domain_name.clone(),
            project: c.project_name.clone(),
            project_domain: c.project_domain_name.clone(),
            cache: Duration::from_secs(c.cache_s),
            timeout: Duration::from_secs(c.timeout_s.max(1)),
            cacert: c.cacert.as_ref().map(Into::into),
            token_domain: c.token_project_domain_name.clone(),
            projects: c.projects.clone(),
            roles,
        })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    pub fn cache_s(&self) -> u64 {
        self.cache.as_secs()
    }
}

/// A cached verdict on one token.
#[derive(Clone)]
enum Verdict {
    Valid(Arc<KeystoneIdentity>),
    /// Keystone called the token invalid (404): 401.
    Invalid,
    /// A valid token Craton refuses (wrong scope, no mapped role): 403.
    Refused(String),
}

struct Entry {
    verdict: Verdict,
    until: Instant,
    /// The Craton project's id, once looked up.
    project_id: Option<i64>,
}

/// cratond's own token, for validating others.
struct ServiceToken {
    secret: String,
    renew_at: Instant,
}

pub struct Keystone {
    settings: Settings,
    agent: ureq::Agent,
    service: Mutex<Option<ServiceToken>>,
    /// SHA-256 (hex) of a user token -> verdict.
    cache: Mutex<HashMap<String, Entry>>,
}

/// What [`Keystone::validate`] found: the identity and, when known, the
/// id of its Craton project.
pub struct Validated {
    pub identity: Arc<KeystoneIdentity>,
    pub project_id: Option<i64>,
    /// The cache key, for [`Keystone::remember_project`].
    pub key: String,
}

/// Never prints a secret.
impl std::fmt::Debug for Keystone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keystone").field("url", &self.settings.base).finish_non_exhaustive()
    }
}

enum Failure {
    /// 404: the token is not (or no longer) valid.
    Invalid,
    /// Keystone rejected the service token (401): get a new one.
    ServiceRejected,
    Refused(String),
    Unavailable(String),
}

impl Keystone {
    pub fn new(settings: Settings) -> Result<Keystone, String> {
        let agent = craton::http_client::agent(settings.timeout, settings.cacert.as_deref())
            .map_err(|e| format!("keystone: {e}"))?;
        Ok(Keystone { settings, agent, service: Mutex::new(None), cache: Mutex::default() })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The caller behind a Keystone token: 401 when Keystone calls it
    /// invalid, 403 when Craton refuses its scope or roles, 503 when
    /// Keystone cannot be asked.
    pub async fn validate(self: &Arc<Self>, token: &str) -> Result<Validated, ApiError> {
        let key = tokens::hash_secret(token);
        if let Some((verdict, project_id)) = self.cached(&key) {
            return verdict_result(verdict, project_id, key);
        }
        let (me, token) = (self.clone(), token.to_string());
        let (verdict, ttl) = tokio::task::spawn_blocking(move || me.ask(&token))
            .await
            .map_err(|e| ApiError::internal(format!("keystone task failed: {e}")))??;
        if !ttl.is_zero() {
            let mut cache = self.cache.lock().expect("keystone cache poisoned");
            if cache.len() >= MAX_ENTRIES {
                let now = Instant::now();
                cache.retain(|_, e| e.until > now);
                if cache.len() >= MAX_ENTRIES {
                    cache.clear();
                }
            }
            cache
                .insert(key.clone(), Entry { verdict: verdict.clone(), until: Instant::now() + ttl, project_id: None });
        }
        verdict_result(verdict, None, key)
    }

    /// Keeps the Craton project id with the cached verdict, so that a
    /// cached token costs no lookup.
    pub fn remember_project(&self, key: &str, id: i64) {
        if let Some(e) = self.cache.lock().expect("keystone cache poisoned").get_mut(key) {
            e.project_id = Some(id);
        }
    }

    fn cached(&self, key: &str) -> Option<(Verdict, Option<i64>)> {
        let mut cache = self.cache.lock().expect("keystone cache poisoned");
        match cache.get(key) {
            Some(e) if e.until > Instant::now() => Some((e.verdict.clone(), e.project_id)),
            Some(_) => {
                cache.remove(key);
                None
            }
            None => None,
        }
    }

    /// Asks Keystone (blocking): the verdict and how long it may be cached.
    fn ask(&self, token: &str) -> Result<(Verdict, Duration), ApiError> {
        let mut renewed = false;
        loop {
            let service = self.service_token(renewed)?;
            match self.validate_with(&service, token) {
                Ok((identity, expires_in)) => {
                    return Ok((Verdict::Valid(Arc::new(identity)), self.settings.cache.min(expires_in)));
                }
                Err(Failure::Invalid) => return Ok((Verdict::Invalid, self.settings.cache.min(NEGATIVE_TTL))),
                Err(Failure::Refused(m)) => return Ok((Verdict::Refused(m), self.settings.cache.min(NEGATIVE_TTL))),
                Err(Failure::ServiceRejected) if !renewed => {
                    *self.service.lock().expect("service token poisoned") = None;
                    renewed = true;
                }
                Err(Failure::ServiceRejected) => return Err(ApiError::Missing(
                    "Keystone rejects cratond's service token (check [keystone] username, password and project_name)"
                        .into(),
                )),
                Err(Failure::Unavailable(m)) => {
                    tracing::warn!(url = %self.settings.base, error = %m, "keystone validation failed");
                    return Err(ApiError::Missing(m));
                }
            }
        }
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> String {
        format!("Keystone at {} is unreachable: {e}", self.settings.base)
    }

    /// cratond's service token: the cached one until shortly before it
    /// expires, else a new one (password auth).
    fn service_token(&self, force_new: bool) -> Result<String, ApiError> {
        if !force_new {
            if let Some(t) = &*self.service.lock().expect("service token poisoned") {
                if Instant::now() < t.renew_at {
                    return Ok(t.secret.clone());
                }
            }
        }
        let s = &self.settings;
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": s.username, "domain": {"name": s.user_domain}, "password": s.password}}},
            "scope": {"project": {"name": s.project, "domain": {"name": s.project_domain}}}
        }});
        let resp = self
            .agent
            .post(format!("{}/auth/tokens?nocatalog", s.base))
            .send_json(&body)
            .map_err(|e| ApiError::Missing(self.unreachable(e)))?;
        let status = resp.status().as_u16();
        if status != 201 {
            return Err(ApiError::Missing(format!(
                "Keystone refused cratond's service credentials (HTTP {status}; check [keystone] username, password, project_name and their domains)"
            )));
        }
        let secret = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| ApiError::Missing("Keystone issued no X-Subject-Token for the service user".into()))?;
        let doc: Value = resp
            .into_body()
            .read_json()
            .map_err(|e| ApiError::Missing(format!("Keystone's token response is not JSON: {e}")))?;
        let lifetime = doc["token"]["expires_at"].as_str().and_then(seconds_until).unwrap_or(0);
        // Renewed with a margin of a tenth of its lifetime (at most five
        // minutes), so no validation runs on a token about to expire.
        let margin = (lifetime / 10).min(300);
        let renew_at = Instant::now() + Duration::from_secs(lifetime.saturating_sub(margin));
        *self.service.lock().expect("service token poisoned") = Some(ServiceToken { secret: secret.clone(), renew_at });
        Ok(secret)
    }

    /// One `GET /v3/auth/tokens` and the mapping of what it says.
    fn validate_with(&self, service: &str, token: &str) -> Result<(KeystoneIdentity, Duration), Failure> {
        let resp = self
            .agent
            .get(format!("{}/auth/tokens?nocatalog", self.settings.base))
            .header("X-Auth-Token", service)
            .header("X-Subject-Token", token)
            .call()
            .map_err(|e| Failure::Unavailable(self.unreachable(e)))?;
        match resp.status().as_u16() {
            200 => {}
            404 => return Err(Failure::Invalid),
            401 => return Err(Failure::ServiceRejected),
            403 => {
                return Err(Failure::Unavailable(
                    "Keystone does not let cratond's service user validate tokens (give it the service role on its project)"
                        .into(),
                ))
            }
            s => return Err(Failure::Unavailable(format!("Keystone answered HTTP {s} to a token validation"))),
        }
        let doc: Value = resp
            .into_body()
            .read_json()
            .map_err(|e| Failure::Unavailable(format!("Keystone's validation response is not JSON: {e}")))?;
        let t = &doc["token"];
        let expires_in = t["expires_at"].as_str().and_then(seconds_until).ok_or(Failure::Invalid)?;
        self.map(t).map(|identity| (identity, Duration::from_secs(expires_in)))
    }

    /// A validated token's scope and roles, in Craton's terms.
    fn map(&self, t: &Value) -> Result<KeystoneIdentity, Failure> {
        let s = &self.settings;
        let project = &t["project"];
        if !project.is_object() {
            let scope = if t["domain"].is_object() {
                "domain-scoped"
            } else if t["system"].is_object() {
                "system-scoped"
            } else {
                "unscoped"
            };
            return Err(Failure::Refused(format!(
                "this Keystone token is {scope}: Craton accepts only project-scoped tokens"
            )));
        }
        let project_name = project["name"].as_str().unwrap_or_default();
        let domain = project["domain"]["name"].as_str().unwrap_or_default();
        if domain != s.token_domain {
            return Err(Failure::Refused(format!(
                "Keystone project {project_name:?} is in domain {domain:?}; this Craton accepts projects of domain {:?}",
                s.token_domain
            )));
        }
        let names: Vec<&str> = t["roles"].as_array().into_iter().flatten().filter_map(|r| r["name"].as_str()).collect();
        let role = names.iter().filter_map(|n| s.roles.get(*n)).max().copied().ok_or_else(|| {
            Failure::Refused(format!(
                "none of the token's Keystone roles ({}) maps to a Craton role (mapped: {})",
                names.join(", "),
                s.roles.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        let craton_project = s.projects.get(project_name).cloned().unwrap_or_else(|| project_name.to_string());
        Ok(KeystoneIdentity {
            user_id: t["user"]["id"].as_str().unwrap_or_default().to_string(),
            user_name: t["user"]["name"].as_str().unwrap_or_default().to_string(),
            project_id: project["id"].as_str().unwrap_or_default().to_string(),
            project_name: project_name.to_string(),
            craton_project,
            role,
        })
    }
}

fn verdict_result(verdict: Verdict, project_id: Option<i64>, key: String) -> Result<Validated, ApiError> {
    match verdict {
        Verdict::Valid(identity) => Ok(Validated { identity, project_id, key }),
        Verdict::Invalid => Err(ApiError::Unauthorized("invalid or expired Keystone token".into())),
        Verdict::Refused(m) => Err(ApiError::Forbidden(m)),
    }
}

/// Seconds from now until Keystone's `expires_at`
/// (`2026-12-02T19:50:22.000000Z`); None when malformed or past.
fn seconds_until(expires_at: &str) -> Option<u64> {
    let at = parse_utc(expires_at)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
    (at > now).then(|| (at - now) as u64)
}

/// `YYYY-MM-DDTHH:MM:SS[.frac]Z` (or `+00:00`) as Unix seconds.
fn parse_utc(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00"))?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.split('.').next()?;
    let mut t = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from 1970-01-01 to y-m-day (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystone_timestamps_parse_as_utc() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_utc("2026-12-02T19:50:22.000000Z"), Some(1_796_241_022));
        assert_eq!(parse_utc("2000-03-01T00:00:00+00:00"), Some(951_868_800));
        assert_eq!(parse_utc("2026-12-02 19:50:22"), None);
    }

    fn config(roles: Option<&[(&str, &str)]>) -> KeystoneConfig {
        KeystoneConfig {
            url: "http://ks:5000/".into(),
            username: "craton".into(),
            password: None,
            user_domain_name: "Default".into(),
            project_name: "service".into(),
            project_domain_name: "Default".into(),
            cache_s: 300,
            timeout_s: 10,
            cacert: None,
            token_project_domain_name: "Default".into(),
            projects: BTreeMap::new(),
            roles: roles.map(|r| r.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        }
    }

    fn token(project: Value, roles: &[&str]) -> Value {
        json!({"user": {"id": "u1", "name": "alice"}, "project": project,
            "roles": roles.iter().map(|r| json!({"name": r})).collect::<Vec<_>>()})
    }

    #[test]
    fn roles_map_to_the_highest_and_scopes_other_than_projects_are_refused() {
        let ks = Keystone::new(Settings::from_config(&config(None), Some("pw".into())).unwrap()).unwrap();
        assert_eq!(ks.settings.base, "http://ks:5000/v3");
        let web = json!({"id": "p1", "name": "web", "domain": {"name": "Default"}});
        let id = ks.map(&token(web.clone(), &["reader", "member"])).ok().unwrap();
        assert_eq!((id.role, id.craton_project.as_str()), (Role::Editor, "web"));
        let Err(Failure::Refused(m)) = ks.map(&token(web, &["heat_stack_owner"])) else { panic!() };
        assert!(m.contains("heat_stack_owner") && m.contains("maps to a Craton role"), "{m}");
        let domain = json!({"user": {"id": "u1"}, "domain": {"id": "default"}, "roles": [{"name": "admin"}]});
        let Err(Failure::Refused(m)) = ks.map(&domain) else { panic!() };
        assert!(m.contains("domain-scoped"), "{m}");
        let other = json!({"id": "p2", "name": "web", "domain": {"name": "tenants"}});
        assert!(matches!(ks.map(&token(other, &["admin"])), Err(Failure::Refused(_))));
    }

    #[test]
    fn role_tables_name_only_craton_roles_and_a_password_is_required() {
        let e = Settings::from_config(&config(Some(&[("operator", "root")])), Some("pw".into())).err().unwrap();
        assert!(e.contains("keystone.roles.operator"), "{e}");
        let e = Settings::from_config(&config(None), None).err().unwrap();
        assert!(e.contains("CRATON_KEYSTONE_PASSWORD"), "{e}");
        let s = Settings::from_config(&config(Some(&[("operator", "admin")])), Some("pw".into())).unwrap();
        assert_eq!(s.roles.len(), 1);
    }
}
