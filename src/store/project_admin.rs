//! Projects as a resource: listed, created, renamed and deleted (with
//! everything they hold, tokens included) by root over the API.

use diesel::prelude::*;

use super::edit::{begin_write, chunked, conflict_on_unique};
use super::schema::{
    api_tokens, group_edges, host_labels, hosts, inventory_groups, memberships, projects, secret_versions, secrets,
    variables,
};
use super::{find_project, now_ms, project_by_id, DbConn, StoreError};
use crate::model::Project;

/// Requests that name no project go to this one, so it stays.
fn refuse_default(p: &Project, what: &str) -> Result<(), StoreError> {
    if p.name == crate::DEFAULT_PROJECT {
        return Err(StoreError::Conflict(format!(
            "the {:?} project cannot be {what}: requests that name no project use it",
            crate::DEFAULT_PROJECT
        )));
    }
    Ok(())
}

/// Every project, by id.
pub fn list_projects(conn: &mut DbConn) -> Result<Vec<Project>, StoreError> {
    let rows: Vec<(i64, String, i64, i64, i64)> = projects::table
        .order(projects::id.asc())
        .select((projects::id, projects::name, projects::revision, projects::created_at, projects::updated_at))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, name, revision, created_at, updated_at)| Project { id, name, revision, created_at, updated_at })
        .collect())
}

/// Creates an empty project; a taken name is a conflict.
pub fn create_project(conn: &mut DbConn, name: &str) -> Result<Project, StoreError> {
    crate::names::check_name("project", name).map_err(StoreError::Invalid)?;
    super::tx::write(conn, |conn| {
        if find_project(conn, name)?.is_some() {
            return Err(StoreError::Conflict(format!("project {name:?} already exists")));
        }
        let now = now_ms();
        diesel::insert_into(projects::table)
            .values((projects::name.eq(name), projects::created_at.eq(now), projects::updated_at.eq(now)))
            .execute(conn)
            .map_err(|e| conflict_on_unique(e, || format!("project {name:?} already exists")))?;
        let p = find_project(conn, name)?.ok_or_else(|| StoreError::NotFound(format!("project {name:?}")))?;
        super::audit::track_new(p.id);
        Ok(p)
    })
}

/// Renames project `id`.
pub fn rename_project(conn: &mut DbConn, id: i64, name: &str) -> Result<Project, StoreError> {
    crate::names::check_name("project", name).map_err(StoreError::Invalid)?;
    super::tx::write(conn, |conn| {
        let current = project_by_id(conn, id)?.ok_or_else(|| StoreError::NotFound(format!("project {id}")))?;
        if current.name == name {
            return Ok(current);
        }
        refuse_default(&current, "renamed")?;
        if find_project(conn, name)?.is_some() {
            return Err(StoreError::Conflict(format!("project {name:?} already exists")));
        }
        // The cached snapshot carries the name: a rename is a new revision.
        begin_write(conn, id)?;
        diesel::update(projects::table.find(id))
            .set(projects::name.eq(name))
            .execute(conn)
            .map_err(|e| conflict_on_unique(e, || format!("project {name:?} already exists")))?;
        project_by_id(conn, id)?.ok_or_else(|| StoreError::NotFound(format!("project {id}")))
    })
}

/// Deletes project `id` with its groups, hosts, variables, secrets and tokens.
/// Done table by table rather than through foreign-key cascades, which
/// differ between the backends for the self-referencing `hosts.parent_id`.
pub fn delete_project(conn: &mut DbConn, id: i64) -> Result<(), StoreError> {
    super::tx::write(conn, |conn| {
        let current = project_by_id(conn, id)?.ok_or_else(|| StoreError::NotFound(format!("project {id}")))?;
        refuse_default(&current, "deleted")?;
        begin_write(conn, id)?;
        let host_ids: Vec<i64> = hosts::table.filter(hosts::project_id.eq(id)).select(hosts::id).load(conn)?;
        let group_ids: Vec<i64> = inventory_groups::table
            .filter(inventory_groups::project_id.eq(id))
            .select(inventory_groups::id)
            .load(conn)?;
        diesel::delete(variables::table.filter(variables::project_id.eq(id))).execute(conn)?;
        // Versions reference the project's data keys without a cascade, and
        // PostgreSQL may cascade to the keys before it reaches the versions
        // (through secrets), failing the delete: they go first, explicitly.
        let secret_ids = secrets::table.filter(secrets::project_id.eq(id)).select(secrets::id);
        diesel::delete(secret_versions::table.filter(secret_versions::secret_id.eq_any(secret_ids))).execute(conn)?;
        for chunk in chunked(&host_ids) {
            diesel::delete(host_labels::table.filter(host_labels::host_id.eq_any(chunk))).execute(conn)?;
            diesel::delete(memberships::table.filter(memberships::host_id.eq_any(chunk))).execute(conn)?;
        }
        for chunk in chunked(&group_ids) {
            diesel::delete(group_edges::table.filter(group_edges::parent_id.eq_any(chunk))).execute(conn)?;
            diesel::delete(group_edges::table.filter(group_edges::child_id.eq_any(chunk))).execute(conn)?;
        }
        diesel::update(hosts::table.filter(hosts::project_id.eq(id)))
            .set(hosts::parent_id.eq(None::<i64>))
            .execute(conn)?;
        diesel::delete(hosts::table.filter(hosts::project_id.eq(id))).execute(conn)?;
        diesel::delete(inventory_groups::table.filter(inventory_groups::project_id.eq(id))).execute(conn)?;
        diesel::delete(api_tokens::table.filter(api_tokens::project_id.eq(id))).execute(conn)?;
        diesel::delete(projects::table.find(id)).execute(conn)?;
        Ok(())
    })
}
