//! Maintenance windows as stored: one row per window of a group. The
//! arithmetic lives in [`crate::windows`]; this module only keeps rows,
//! checking each with [`Window::parse`] on the way in so that what is stored
//! always parses.

use diesel::prelude::*;
use serde::Serialize;

use super::edit::{conflict_on_unique, invalid};
use super::schema::{inventory_groups, maintenance_windows};
use super::{now_ms, DbConn, StoreError};
use crate::windows::{Window, WindowError, WindowKind};

/// Longest window name.
pub const MAX_NAME_CHARS: usize = 255;
/// Longest expression (an RRULE block with EXDATEs may be long; not unbounded).
pub const MAX_EXPRESSION_CHARS: usize = 4096;

/// A window as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WindowRecord {
    pub id: i64,
    pub group_id: i64,
    pub name: String,
    pub kind: String,
    pub expression: String,
    pub time_zone: String,
    pub duration_s: i64,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

impl WindowRecord {
    /// The parsed window (rows were checked when written).
    pub fn window(&self) -> Result<Window, WindowError> {
        let kind: WindowKind = self.kind.parse()?;
        Window::parse(kind, &self.expression, Some(&self.time_zone), self.duration_s)
    }
}

/// What `POST /v1/groups/{id}/windows` asks for.
#[derive(Debug, Clone)]
pub struct NewWindow {
    pub name: String,
    pub kind: WindowKind,
    pub expression: String,
    /// Required for cron; for rrule it defaults to `DTSTART`'s `TZID`.
    pub time_zone: Option<String>,
    pub duration_s: i64,
}

fn window_error(e: WindowError) -> StoreError {
    invalid(e.field, e.message)
}

type Row = (i64, i64, String, String, String, String, i64, i64);

fn record((id, group_id, name, kind, expression, time_zone, duration_s, created_at): Row) -> WindowRecord {
    WindowRecord { id, group_id, name, kind, expression, time_zone, duration_s, created_at }
}

macro_rules! columns {
    () => {
        (
            maintenance_windows::id,
            maintenance_windows::group_id,
            maintenance_windows::name,
            maintenance_windows::kind,
            maintenance_windows::expression,
            maintenance_windows::time_zone,
            maintenance_windows::duration_s,
            maintenance_windows::created_at,
        )
    };
}

/// Adds a window to group `group_id` of project `pid`.
pub fn create_window(conn: &mut DbConn, pid: i64, group_id: i64, new: &NewWindow) -> Result<WindowRecord, StoreError> {
    crate::names::check_name("window", &new.name).map_err(|m| invalid("name", m))?;
    super::text_field("name", &new.name, MAX_NAME_CHARS)?;
    super::text_field("expression", &new.expression, MAX_EXPRESSION_CHARS)?;
    let parsed =
        Window::parse(new.kind, &new.expression, new.time_zone.as_deref(), new.duration_s).map_err(window_error)?;
    super::tx::write(conn, |conn| {
        let group: Option<i64> = inventory_groups::table
            .filter(inventory_groups::project_id.eq(pid))
            .filter(inventory_groups::id.eq(group_id))
            .select(inventory_groups::id)
            .first(conn)
            .optional()?;
        group.ok_or_else(|| StoreError::NotFound(format!("group {group_id}")))?;
        let taken = || format!("group {group_id} already has a window {:?}", new.name);
        diesel::insert_into(maintenance_windows::table)
            .values((
                maintenance_windows::project_id.eq(pid),
                maintenance_windows::group_id.eq(group_id),
                maintenance_windows::name.eq(&new.name),
                maintenance_windows::kind.eq(new.kind.as_str()),
                maintenance_windows::expression.eq(new.expression.trim()),
                maintenance_windows::time_zone.eq(parsed.time_zone()),
                maintenance_windows::duration_s.eq(new.duration_s),
                maintenance_windows::created_at.eq(now_ms()),
            ))
            .execute(conn)
            .map_err(|e| conflict_on_unique(e, taken))?;
        let row: Row = maintenance_windows::table
            .filter(maintenance_windows::group_id.eq(group_id))
            .filter(maintenance_windows::name.eq(&new.name))
            .select(columns!())
            .first(conn)?;
        let w = record(row);
        super::audit::note(pid, "window", &format!("#{}", w.id), None, Some(&audit_json(&w)));
        Ok(w)
    })
}

/// A window as the audit trail keeps it.
fn audit_json(w: &WindowRecord) -> serde_json::Value {
    serde_json::to_value(w).unwrap_or_default()
}

/// Every window of project `pid`, by id.
pub fn project_windows(conn: &mut DbConn, pid: i64) -> Result<Vec<WindowRecord>, StoreError> {
    let rows: Vec<Row> = maintenance_windows::table
        .filter(maintenance_windows::project_id.eq(pid))
        .order(maintenance_windows::id)
        .select(columns!())
        .load(conn)?;
    Ok(rows.into_iter().map(record).collect())
}

/// Window `id` of project `pid`; a window of another project is not found.
pub fn get_window(conn: &mut DbConn, pid: i64, id: i64) -> Result<WindowRecord, StoreError> {
    let row: Option<Row> = maintenance_windows::table
        .filter(maintenance_windows::project_id.eq(pid))
        .filter(maintenance_windows::id.eq(id))
        .select(columns!())
        .first(conn)
        .optional()?;
    row.map(record).ok_or_else(|| StoreError::NotFound(format!("window {id}")))
}

/// Deletes window `id` of project `pid`.
pub fn delete_window(conn: &mut DbConn, pid: i64, id: i64) -> Result<(), StoreError> {
    super::tx::write(conn, |conn| {
        let w = get_window(conn, pid, id)?;
        diesel::delete(
            maintenance_windows::table
                .filter(maintenance_windows::project_id.eq(pid))
                .filter(maintenance_windows::id.eq(id)),
        )
        .execute(conn)?;
        super::audit::note(pid, "window", &format!("#{id}"), Some(&audit_json(&w)), None);
        Ok(())
    })
}
