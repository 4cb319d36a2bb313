//! Table definitions shared by SQLite and PostgreSQL (kept in step with both `migrations/` trees).
// @generated shape, maintained by hand: `diesel print-schema` would emit the same.

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        name -> Text,
        role -> Text,
        base_currency -> Text,
        timezone -> Text,
        locale -> Text,
        password_hash -> Text,
        security_stamp -> Text,
        disabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_seen_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        last_used_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        revoked_reason -> Nullable<Text>,
        user_agent -> Text,
        ip -> Text,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        session_id -> Text,
        created_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::allow_tables_to_appear_in_same_query!(users, sessions, refresh_tokens);

diesel::table! {
    accounts (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        kind -> Text,
        currency -> Text,
        opening_balance -> BigInt,
        opening_date -> Date,
        number_hint -> Nullable<Text>,
        archived -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    categories (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        parent_id -> Nullable<Text>,
        kind -> Text,
        color -> Nullable<Text>,
        icon -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    transactions (id) {
        id -> Text,
        user_id -> Text,
        account_id -> Text,
        amount -> BigInt,
        currency -> Text,
        date -> Date,
        occurred_at -> Nullable<Timestamp>,
        description -> Text,
        merchant -> Text,
        category_id -> Nullable<Text>,
        category_source -> Text,
        confidence -> Nullable<Double>,
        tags -> Text,
        notes -> Text,
        transfer_id -> Nullable<Text>,
        foreign_amount -> Nullable<BigInt>,
        foreign_currency -> Nullable<Text>,
        source -> Text,
        external_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    /// Each user's small integer key, never reused: the event log is keyed by it.
    user_keys (num) {
        num -> BigInt,
        user_id -> Text,
    }
}

diesel::table! {
    events (user_num, seq) {
        user_num -> BigInt,
        seq -> BigInt,
        message_id -> Text,
        kind -> Text,
        envelope -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    idempotency_keys (user_id, key) {
        user_id -> Text,
        key -> Text,
        fingerprint -> Text,
        status -> Integer,
        response -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    exchange_rates (user_id, base, quote, date) {
        user_id -> Text,
        base -> Text,
        quote -> Text,
        date -> Date,
        rate -> Text,
    }
}

diesel::joinable!(accounts -> users (user_id));
diesel::joinable!(transactions -> accounts (account_id));
diesel::joinable!(transactions -> categories (category_id));
diesel::allow_tables_to_appear_in_same_query!(
    accounts,
    categories,
    transactions,
    events,
    idempotency_keys,
    exchange_rates,
    users
);

diesel::table! {
    budgets (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        limit_amount -> BigInt,
        currency -> Text,
        period -> Text,
        start_date -> Date,
        end_date -> Nullable<Date>,
        category_ids -> Text,
        account_ids -> Text,
        thresholds -> Text,
        rollover -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    budget_alerts (budget_id, period_start, threshold) {
        budget_id -> Text,
        period_start -> Date,
        threshold -> Integer,
        spent -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    notifications (id) {
        id -> Text,
        user_id -> Text,
        kind -> Text,
        channel -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Nullable<Timestamp>,
        dedup_key -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        read_at -> Nullable<Timestamp>,
        webhook_id -> Nullable<Text>,
        last_error -> Nullable<Text>,
        response_status -> Nullable<Integer>,
    }
}

diesel::joinable!(budget_alerts -> budgets (budget_id));
diesel::allow_tables_to_appear_in_same_query!(budgets, budget_alerts, notifications);

diesel::table! {
    recurring (id) {
        id -> Text,
        user_id -> Text,
        account_id -> Text,
        amount -> BigInt,
        description -> Text,
        merchant -> Text,
        category_id -> Nullable<Text>,
        tags -> Text,
        notes -> Text,
        frequency -> Text,
        every -> Integer,
        day_of_month -> Nullable<Integer>,
        next_date -> Date,
        end_date -> Nullable<Date>,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    goals (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        target_amount -> BigInt,
        currency -> Text,
        target_date -> Nullable<Date>,
        account_id -> Nullable<Text>,
        contributed -> BigInt,
        reached_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(recurring, goals, transactions);

diesel::table! {
    rules (id) {
        id -> Text,
        user_id -> Text,
        position -> BigInt,
        name -> Text,
        conditions -> Text,
        match_mode -> Text,
        actions -> Text,
        stop_processing -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    merchant_memory (user_id, merchant_key) {
        user_id -> Text,
        merchant_key -> Text,
        category_id -> Text,
        updated_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(rules, merchant_memory, transactions);

diesel::table! {
    notification_preferences (user_id) {
        user_id -> Text,
        preferences -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Text,
        user_id -> Text,
        url -> Text,
        secret -> Text,
        event_types -> Text,
        description -> Text,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    password_resets (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    notifications,
    users,
    webhooks,
    notification_preferences
);

diesel::allow_tables_to_appear_in_same_query!(events, user_keys);
