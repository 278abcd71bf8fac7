//! Runs submitted later on someone's behalf: a schedule firing, a webhook
//! rule matching a GitHub event. Both store who created them
//! ([`Creator`]) and submit their template through `api::runs::submit` as
//! that creator *as it is now*: a token is read again (revoked: refused;
//! its role is the current one), so nothing outlives the authority that
//! set it up. One function for both, so the two cannot drift apart.

use craton::store::schedules::Creator;
use craton::store::tokens::{self, Role};
use serde_json::{Map, Value};

use crate::api::auth::{Caller, Who};
use crate::api::error::ApiError;
use crate::state::AppState;

/// What submits: a schedule or a webhook rule, of a project, made by a
/// creator.
pub struct Owner<'a> {
    /// `schedule`, `webhook rule`: how refusals name it.
    pub what: &'a str,
    pub project_id: i64,
    pub creator: &'a Creator,
    /// The creator as recorded (`token 3 (editor)`).
    pub created_by: &'a str,
}

/// The caller a run acts as: the creator now. A token is read again
/// (revoked: refused); its role is what it is now (`submit` checks editor).
async fn creator_caller(state: &AppState, o: &Owner<'_>) -> Result<Caller, String> {
    match (o.creator.kind.as_str(), o.creator.token_id) {
        ("local", _) => Ok(Caller::local()),
        ("token", Some(id)) => {
            let grant = state
                .db(move |conn| Ok(tokens::grant_of(conn, id)?))
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("the {}'s creator, token {id}, is revoked or deleted", o.what))?;
            if grant.project_id.is_some_and(|p| p != o.project_id) {
                return Err(format!("token {id} does not belong to the {}'s project", o.what));
            }
            Ok(Caller { who: Who::Token(id), grant })
        }
        (kind, _) => Err(format!("the {}'s creator ({kind}) cannot submit runs", o.what)),
    }
}

/// A refusal as one line: the message and each field's problem.
pub fn describe(e: &ApiError) -> String {
    match e {
        ApiError::BadRequest { message, details } if !details.is_empty() => {
            let d: Vec<String> = details.iter().map(|d| format!("{}: {}", d.field, d.message)).collect();
            format!("{message} ({})", d.join("; "))
        }
        other => format!("{} {}", other.status().as_u16(), other),
    }
}

/// Submits `body` (a `POST /v1/runs` body) in the owner's project as its
/// creator; the run id, or why not. The run's `created_by` is `label`
/// followed by the creator (`schedule:4 token 3 (editor)`).
pub async fn submit_as_creator(
    state: &AppState,
    o: &Owner<'_>,
    body: &Map<String, Value>,
    label: &str,
) -> Result<i64, String> {
    let caller = creator_caller(state, o).await?;
    // A reader token would be refused by submit too; saying so here names
    // the creator rather than "this needs the editor role".
    if caller.grant.role < Role::Editor {
        return Err(format!(
            "the {}'s creator ({}) is now {}: runs need editor",
            o.what,
            o.created_by,
            caller.grant.role.as_str()
        ));
    }
    let pid = o.project_id;
    let project = state
        .db(move |conn| Ok(craton::store::project_by_id(conn, pid)?))
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the {}'s project is gone", o.what))?;
    let who = format!("{label} {}", crate::api::runs::created_by(&caller));
    match crate::api::runs::submit(state, caller, Some(project.name), body, who).await {
        Ok((run, _)) => Ok(run.id),
        Err(e) => Err(describe(&e)),
    }
}
