//! The one diesel schema shared by SQLite, PostgreSQL and MySQL/MariaDB.
//! Kept by hand in step with the three folders under `migrations/`.

diesel::table! {
    projects (id) {
        id -> BigInt,
        name -> Text,
        revision -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        max_concurrent_runs -> Integer,
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
        secrets_scope -> Bool,
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

diesel::table! {
    config_refs (id) {
        id -> BigInt,
        project_id -> BigInt,
        group_id -> Nullable<BigInt>,
        url -> Text,
        git_ref -> Text,
        path -> Text,
        poll_interval_secs -> Integer,
        last_commit -> Nullable<Text>,
        last_synced_at -> Nullable<BigInt>,
        last_attempt_at -> Nullable<BigInt>,
        last_result -> Nullable<Text>,
        last_error -> Nullable<Text>,
        error_file -> Nullable<Text>,
        error_line -> Nullable<Integer>,
        vars_created -> Integer,
        vars_updated -> Integer,
        vars_removed -> Integer,
        failures -> Integer,
        next_poll_at -> BigInt,
        sync_requested_at -> Nullable<BigInt>,
        lease_holder -> Nullable<Text>,
        lease_expires_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        created_by_root -> Bool,
    }
}

diesel::joinable!(config_refs -> projects (project_id));
diesel::allow_tables_to_appear_in_same_query!(config_refs, projects);
diesel::allow_tables_to_appear_in_same_query!(config_refs, inventory_groups);
diesel::allow_tables_to_appear_in_same_query!(config_refs, variables);

diesel::table! {
    runs (id) {
        id -> BigInt,
        project_id -> BigInt,
        status -> Text,
        playbook -> Text,
        source -> Text,
        git_commit -> Nullable<Text>,
        target -> Text,
        target_group -> Nullable<Text>,
        options -> Text,
        created_by -> Text,
        rc -> Nullable<Integer>,
        reason -> Nullable<Text>,
        bundle_etag -> Nullable<Text>,
        hosts_total -> Integer,
        hosts_ok -> Integer,
        hosts_changed -> Integer,
        hosts_failed -> Integer,
        hosts_unreachable -> Integer,
        hosts_skipped -> Integer,
        events_received -> BigInt,
        events_lost -> Bool,
        stdout_bytes -> BigInt,
        stdout_truncated -> Bool,
        cancel_requested -> Nullable<Text>,
        lease_holder -> Nullable<Text>,
        lease_expires_at -> Nullable<BigInt>,
        created_at -> BigInt,
        started_at -> Nullable<BigInt>,
        finished_at -> Nullable<BigInt>,
        updated_at -> BigInt,
        claimed_at -> Nullable<BigInt>,
        waiting_for -> Nullable<Text>,
    }
}

diesel::table! {
    run_locks (project_id, host) {
        project_id -> BigInt,
        host -> Text,
        run_id -> BigInt,
    }
}

diesel::table! {
    schedule_after (schedule_id, after_id) {
        schedule_id -> BigInt,
        after_id -> BigInt,
    }
}

diesel::table! {
    run_approvals (run_id) {
        run_id -> BigInt,
        requested_by -> Text,
        expires_at -> Nullable<BigInt>,
        decision -> Nullable<Text>,
        decided_by -> Nullable<Text>,
        decided_at -> Nullable<BigInt>,
        comment -> Nullable<Text>,
    }
}

diesel::table! {
    run_bundles (run_id) {
        run_id -> BigInt,
        bytes -> Binary,
        inventory_revision -> Nullable<BigInt>,
    }
}

diesel::table! {
    run_hosts (run_id, host) {
        run_id -> BigInt,
        host -> Text,
        status -> Text,
        ok -> Integer,
        changed -> Integer,
        failures -> Integer,
        unreachable -> Integer,
        skipped -> Integer,
        rescued -> Integer,
        ignored -> Integer,
        last_task -> Nullable<Text>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    run_events (run_id, counter) {
        run_id -> BigInt,
        counter -> BigInt,
        event -> Text,
        host -> Nullable<Text>,
        created -> BigInt,
        data -> Text,
    }
}

diesel::table! {
    run_stdout (run_id, seq) {
        run_id -> BigInt,
        seq -> Integer,
        chunk -> Text,
    }
}

diesel::table! {
    host_run_state (host_id) {
        host_id -> BigInt,
        project_id -> BigInt,
        last_run_id -> BigInt,
        last_run_status -> Text,
        last_run_at -> BigInt,
        last_reachable_at -> Nullable<BigInt>,
        last_unreachable_at -> Nullable<BigInt>,
    }
}

diesel::joinable!(runs -> projects (project_id));
diesel::joinable!(host_run_state -> hosts (host_id));
diesel::allow_tables_to_appear_in_same_query!(runs, projects);
diesel::allow_tables_to_appear_in_same_query!(host_run_state, hosts);

// Secrets (issue 9): see migrations/*/2026-12-02-000030_secrets.
diesel::table! {
    secret_data_keys (id) {
        id -> BigInt,
        project_id -> BigInt,
        provider -> Text,
        key_version -> BigInt,
        wrapped -> Text,
        active -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    secrets (id) {
        id -> BigInt,
        project_id -> BigInt,
        owner_kind -> Text,
        owner_id -> BigInt,
        name -> Text,
        kind -> Text,
        current_version -> BigInt,
        fingerprint -> Text,
        not_after -> Nullable<BigInt>,
        created_by -> Text,
        updated_by -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        tier -> Integer,
    }
}

diesel::table! {
    secret_versions (secret_id, version) {
        secret_id -> BigInt,
        version -> BigInt,
        data_key_id -> BigInt,
        ciphertext -> Binary,
        fingerprint -> Text,
        created_by -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    secret_access (id) {
        id -> BigInt,
        project_id -> BigInt,
        secret_id -> Nullable<BigInt>,
        owner_kind -> Text,
        owner_id -> BigInt,
        name -> Text,
        action -> Text,
        version -> Nullable<BigInt>,
        actor -> Text,
        at -> BigInt,
    }
}

diesel::joinable!(secret_versions -> secrets (secret_id));
diesel::allow_tables_to_appear_in_same_query!(secrets, secret_versions, secret_data_keys);

diesel::table! {
    maintenance_windows (id) {
        id -> BigInt,
        project_id -> BigInt,
        group_id -> BigInt,
        name -> Text,
        kind -> Text,
        expression -> Text,
        time_zone -> Text,
        duration_s -> BigInt,
        created_at -> BigInt,
    }
}

diesel::joinable!(maintenance_windows -> inventory_groups (group_id));
diesel::allow_tables_to_appear_in_same_query!(maintenance_windows, inventory_groups);

diesel::table! {
    audit_changesets (id) {
        id -> BigInt,
        project_id -> BigInt,
        project_name -> Text,
        at -> BigInt,
        actor_kind -> Text,
        actor -> Text,
        actor_note -> Nullable<Text>,
        source -> Text,
        via -> Text,
        rev_before -> Nullable<BigInt>,
        rev_after -> Nullable<BigInt>,
        n_changes -> BigInt,
        document -> Nullable<Text>,
    }
}

diesel::table! {
    audit_changes (id) {
        id -> BigInt,
        changeset_id -> BigInt,
        project_id -> BigInt,
        object_kind -> Text,
        object_name -> Text,
        attr_kind -> Text,
        attr -> Text,
        old_value -> Nullable<Text>,
        new_value -> Nullable<Text>,
    }
}

diesel::joinable!(audit_changes -> audit_changesets (changeset_id));
diesel::allow_tables_to_appear_in_same_query!(audit_changes, audit_changesets);

diesel::table! {
    hooks (id) {
        id -> BigInt,
        project_id -> BigInt,
        url -> Text,
        secret -> Text,
        events -> Text,
        active -> Bool,
        created_by_root -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    hook_deliveries (id) {
        id -> BigInt,
        hook_id -> BigInt,
        project_id -> BigInt,
        event -> Text,
        subject -> Text,
        payload -> Text,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        claimed_by -> Nullable<Text>,
        claim_expires_at -> Nullable<BigInt>,
        last_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        finished_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    hook_attempts (id) {
        id -> BigInt,
        delivery_id -> BigInt,
        attempt -> Integer,
        at -> BigInt,
        status_code -> Nullable<Integer>,
        error -> Nullable<Text>,
        duration_ms -> BigInt,
    }
}

diesel::joinable!(hook_deliveries -> hooks (hook_id));
diesel::allow_tables_to_appear_in_same_query!(hooks, hook_deliveries);

diesel::table! {
    schedules (id) {
        id -> BigInt,
        project_id -> BigInt,
        name -> Text,
        template -> Text,
        kind -> Text,
        expression -> Text,
        time_zone -> Text,
        enabled -> Bool,
        catch_up -> Text,
        next_run_at -> Nullable<BigInt>,
        created_by -> Text,
        creator_kind -> Text,
        creator_token_id -> Nullable<BigInt>,
        creator_role -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    schedule_firings (id) {
        id -> BigInt,
        schedule_id -> BigInt,
        occurrence -> BigInt,
        status -> Text,
        missed -> BigInt,
        run_id -> Nullable<BigInt>,
        error -> Nullable<Text>,
        holder -> Text,
        fired_at -> BigInt,
    }
}

diesel::joinable!(schedule_firings -> schedules (schedule_id));
diesel::allow_tables_to_appear_in_same_query!(schedule_firings, schedules);

diesel::table! {
    webhook_rules (id) {
        id -> BigInt,
        project_id -> BigInt,
        name -> Text,
        event -> Text,
        repository -> Text,
        branches -> Text,
        tags -> Text,
        matchers -> Text,
        sync_first -> Bool,
        template -> Text,
        enabled -> Bool,
        created_by -> Text,
        creator_kind -> Text,
        creator_token_id -> Nullable<BigInt>,
        creator_role -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        commit_status -> Bool,
        status_context -> Nullable<Text>,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> BigInt,
        delivery -> Text,
        event -> Text,
        repository -> Nullable<Text>,
        git_ref -> Nullable<Text>,
        sha -> Nullable<Text>,
        received_at -> BigInt,
        holder -> Text,
        outcome -> Text,
    }
}

diesel::table! {
    webhook_rule_matches (id) {
        id -> BigInt,
        delivery_id -> BigInt,
        rule_id -> BigInt,
        project_id -> BigInt,
        status -> Text,
        simulation -> Bool,
        sha -> Nullable<Text>,
        run_id -> Nullable<BigInt>,
        error -> Nullable<Text>,
        updated_at -> BigInt,
    }
}

diesel::joinable!(webhook_rule_matches -> webhook_deliveries (delivery_id));
diesel::joinable!(webhook_rule_matches -> webhook_rules (rule_id));
diesel::allow_tables_to_appear_in_same_query!(webhook_rule_matches, webhook_deliveries, webhook_rules);

diesel::table! {
    commit_statuses (id) {
        id -> BigInt,
        project_id -> BigInt,
        run_id -> BigInt,
        rule_id -> BigInt,
        event -> Text,
        repository -> Text,
        sha -> Text,
        context -> Text,
        state -> Text,
        description -> Text,
        target_url -> Nullable<Text>,
        delivery -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        claimed_by -> Nullable<Text>,
        claim_expires_at -> Nullable<BigInt>,
        last_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        finished_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    run_batches (run_id, seq) {
        run_id -> BigInt,
        seq -> Integer,
        hosts -> Text,
        status -> Text,
        rc -> Nullable<Integer>,
        failed -> Integer,
        reason -> Nullable<Text>,
        started_at -> Nullable<BigInt>,
        finished_at -> Nullable<BigInt>,
        approval -> Nullable<Text>,
        decided_by -> Nullable<Text>,
        decided_at -> Nullable<BigInt>,
        comment -> Nullable<Text>,
    }
}

diesel::table! {
    run_rollouts (run_id) {
        run_id -> BigInt,
        requested_by -> Text,
        resumed_from -> Nullable<BigInt>,
        resumed_by -> Nullable<BigInt>,
    }
}
