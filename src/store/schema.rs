//! The one diesel schema shared by SQLite, PostgreSQL and MySQL/MariaDB.
//! Kept by hand in step with the three folders under `migrations/`.

diesel::table! {
    projects (id) {
        id -> BigInt,
        name -> Text,
        revision -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> BigInt,
        project_id -> Nullable<BigInt>,
        role -> Text,
        description -> Text,
        token_hash -> Text,
        prefix -> Text,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    inventory_groups (id) {
        id -> BigInt,
        project_id -> BigInt,
        name -> Text,
        kind -> Text,
        description -> Nullable<Text>,
        priority -> Nullable<Integer>,
        all_position -> Nullable<Integer>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    group_edges (parent_id, child_id) {
        parent_id -> BigInt,
        child_id -> BigInt,
        position -> Integer,
    }
}

diesel::table! {
    hosts (id) {
        id -> BigInt,
        project_id -> BigInt,
        name -> Text,
        ip_address -> Nullable<Text>,
        active -> Bool,
        parent_id -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    memberships (group_id, host_id) {
        group_id -> BigInt,
        host_id -> BigInt,
        position -> Integer,
    }
}

diesel::table! {
    host_labels (host_id, label) {
        host_id -> BigInt,
        label -> Text,
    }
}

diesel::table! {
    variables (project_id, owner_kind, owner_id, var_key) {
        project_id -> BigInt,
        owner_kind -> Integer,
        owner_id -> BigInt,
        var_key -> Text,
        var_value -> Text,
        tier -> Integer,
        source_id -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::joinable!(inventory_groups -> projects (project_id));
diesel::joinable!(hosts -> projects (project_id));
diesel::joinable!(memberships -> hosts (host_id));
diesel::joinable!(memberships -> inventory_groups (group_id));
diesel::joinable!(host_labels -> hosts (host_id));
diesel::joinable!(variables -> projects (project_id));

diesel::joinable!(api_tokens -> projects (project_id));

diesel::allow_tables_to_appear_in_same_query!(
    projects,
    api_tokens,
    inventory_groups,
    group_edges,
    hosts,
    memberships,
    host_labels,
    variables,
);
