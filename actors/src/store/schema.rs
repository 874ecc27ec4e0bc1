// @generated automatically by Diesel CLI.

diesel::table! {
    auth_tokens (id) {
        id -> Int8,
        user_id -> Int8,
        token_hash -> Bytea,
        kind -> Text,
        csrf_token -> Nullable<Text>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    bookings (id) {
        id -> Int8,
        user_id -> Int8,
        charger_id -> Int8,
        connector_id -> Int8,
        start_at -> Timestamptz,
        end_at -> Timestamptz,
        status -> Text,
        fee -> Numeric,
        grace_ends_at -> Nullable<Timestamptz>,
        slot_started_at -> Nullable<Timestamptz>,
        checked_in_at -> Nullable<Timestamptz>,
        checkin_method -> Nullable<Text>,
        expired_at -> Nullable<Timestamptz>,
        expired_reason -> Nullable<Text>,
        cancelled_at -> Nullable<Timestamptz>,
        refund_amount -> Nullable<Numeric>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    chargers (id) {
        id -> Int8,
        charge_point_id -> Text,
        station_id -> Nullable<Int8>,
        password_hash -> Nullable<Text>,
        registration_status -> Text,
        vendor -> Nullable<Text>,
        model -> Nullable<Text>,
        charge_point_serial -> Nullable<Text>,
        charge_box_serial -> Nullable<Text>,
        firmware_version -> Nullable<Text>,
        iccid -> Nullable<Text>,
        imsi -> Nullable<Text>,
        meter_type -> Nullable<Text>,
        meter_serial -> Nullable<Text>,
        feature_profiles -> Nullable<Text>,
        firmware_status -> Nullable<Text>,
        diagnostics_status -> Nullable<Text>,
        local_list_version -> Nullable<Int4>,
        online -> Bool,
        connected_at -> Nullable<Timestamptz>,
        last_boot_at -> Nullable<Timestamptz>,
        last_seen_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        password_mac -> Nullable<Text>,
    }
}

diesel::table! {
    charging_sessions (id) {
        id -> Int8,
        user_id -> Nullable<Int8>,
        charger_id -> Int8,
        connector_id -> Int8,
        station_id -> Nullable<Int8>,
        transaction_id -> Nullable<Int4>,
        id_tag -> Text,
        source -> Text,
        status -> Text,
        price_per_kwh -> Numeric,
        meter_start_wh -> Nullable<Int8>,
        meter_last_wh -> Nullable<Int8>,
        meter_stop_wh -> Nullable<Int8>,
        energy_wh -> Int8,
        power_w -> Nullable<Int8>,
        soc_percent -> Nullable<Int2>,
        battery_level_start -> Nullable<Int2>,
        battery_level_end -> Nullable<Int2>,
        cost -> Numeric,
        limit_energy_wh -> Nullable<Int8>,
        limit_amount -> Nullable<Numeric>,
        requested_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        ended_at -> Nullable<Timestamptz>,
        duration_seconds -> Nullable<Int4>,
        average_power_w -> Nullable<Int8>,
        stop_reason -> Nullable<Text>,
        ocpp_stop_reason -> Nullable<Text>,
        meter_fault -> Bool,
        rating -> Nullable<Int2>,
        settled_at -> Nullable<Timestamptz>,
        booking_id -> Nullable<Int8>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    connector_status_history (id) {
        id -> Int8,
        connector_id -> Int8,
        status -> Text,
        error_code -> Text,
        info -> Nullable<Text>,
        vendor_id -> Nullable<Text>,
        vendor_error_code -> Nullable<Text>,
        reported_at -> Nullable<Timestamptz>,
        received_at -> Timestamptz,
    }
}

diesel::table! {
    connectors (id) {
        id -> Int8,
        charger_id -> Int8,
        connector_number -> Int4,
        status -> Text,
        error_code -> Text,
        info -> Nullable<Text>,
        vendor_id -> Nullable<Text>,
        vendor_error_code -> Nullable<Text>,
        metered -> Bool,
        status_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    login_attempts (id) {
        id -> Int8,
        login -> Text,
        client_addr -> Text,
        succeeded -> Bool,
        attempted_at -> Timestamptz,
    }
}

diesel::table! {
    meter_readings (id) {
        id -> Int8,
        charger_id -> Int8,
        connector_number -> Int4,
        session_id -> Nullable<Int8>,
        transaction_id -> Nullable<Int4>,
        sampled_at -> Timestamptz,
        samples -> Json,
        received_at -> Timestamptz,
        energy_register_wh -> Nullable<Int8>,
    }
}

diesel::table! {
    notification_deliveries (id) {
        id -> Int8,
        notification_id -> Int8,
        channel -> Text,
        attempt -> Int4,
        outcome -> Text,
        error -> Nullable<Text>,
        attempted_at -> Timestamptz,
        next_attempt_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    notifications (id) {
        id -> Int8,
        user_id -> Int8,
        kind -> Text,
        subject -> Text,
        body_text -> Text,
        body_html -> Nullable<Text>,
        sms_text -> Nullable<Text>,
        status -> Text,
        booking_id -> Nullable<Int8>,
        session_id -> Nullable<Int8>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    ocpp_messages (id) {
        id -> Int8,
        charge_point_id -> Text,
        direction -> Text,
        message_type -> Nullable<Int2>,
        message_id -> Nullable<Text>,
        action -> Nullable<Text>,
        payload -> Text,
        error_code -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    payments (id) {
        id -> Int8,
        user_id -> Int8,
        merchant_transaction_id -> Text,
        provider -> Text,
        amount -> Numeric,
        state -> Text,
        provider_reference -> Nullable<Text>,
        failure_reason -> Nullable<Text>,
        check_attempts -> Int4,
        last_checked_at -> Nullable<Timestamptz>,
        completed_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    queue_entries (id) {
        id -> Int8,
        charger_id -> Int8,
        connector_number -> Nullable<Int4>,
        user_id -> Int8,
        status -> Text,
        held_connector -> Nullable<Int4>,
        held_until -> Nullable<Timestamptz>,
        joined_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    reservations (id) {
        id -> Int4,
        charger_id -> Int8,
        connector_number -> Int4,
        id_tag -> Text,
        user_id -> Nullable<Int8>,
        booking_id -> Nullable<Int8>,
        queue_entry_id -> Nullable<Int8>,
        expires_at -> Timestamptz,
        status -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    revenue_entries (id) {
        id -> Int8,
        station_id -> Int8,
        owner_id -> Int8,
        session_id -> Nullable<Int8>,
        kind -> Text,
        amount -> Numeric,
        energy_wh -> Int8,
        created_at -> Timestamptz,
        booking_id -> Nullable<Int8>,
    }
}

diesel::table! {
    rfid_cards (id) {
        id -> Int8,
        user_id -> Int8,
        id_tag -> Text,
        label -> Nullable<Text>,
        blocked -> Bool,
        expires_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    stations (id) {
        id -> Int8,
        owner_id -> Int8,
        name -> Text,
        address -> Text,
        latitude -> Nullable<Numeric>,
        longitude -> Nullable<Numeric>,
        price_per_kwh -> Numeric,
        booking_fee -> Nullable<Numeric>,
        opening_hours -> Nullable<Text>,
        active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        username -> Text,
        phone -> Text,
        email -> Nullable<Text>,
        name -> Nullable<Text>,
        role -> Text,
        pin_hash -> Text,
        id_tag -> Text,
        vehicle_battery_wh -> Int8,
        notify_email -> Bool,
        notify_sms -> Bool,
        failed_logins -> Int4,
        locked_until -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    wallet_entries (id) {
        id -> Int8,
        user_id -> Int8,
        amount -> Numeric,
        kind -> Text,
        description -> Text,
        reference_kind -> Text,
        reference_id -> Int8,
        balance_after -> Numeric,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    wallets (user_id) {
        user_id -> Int8,
        balance -> Numeric,
        currency -> Text,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(auth_tokens -> users (user_id));
diesel::joinable!(bookings -> chargers (charger_id));
diesel::joinable!(bookings -> connectors (connector_id));
diesel::joinable!(bookings -> users (user_id));
diesel::joinable!(chargers -> stations (station_id));
diesel::joinable!(charging_sessions -> bookings (booking_id));
diesel::joinable!(charging_sessions -> chargers (charger_id));
diesel::joinable!(charging_sessions -> connectors (connector_id));
diesel::joinable!(charging_sessions -> stations (station_id));
diesel::joinable!(charging_sessions -> users (user_id));
diesel::joinable!(connector_status_history -> connectors (connector_id));
diesel::joinable!(connectors -> chargers (charger_id));
diesel::joinable!(notification_deliveries -> notifications (notification_id));
diesel::joinable!(notifications -> bookings (booking_id));
diesel::joinable!(notifications -> charging_sessions (session_id));
diesel::joinable!(notifications -> users (user_id));
diesel::joinable!(payments -> users (user_id));
diesel::joinable!(queue_entries -> chargers (charger_id));
diesel::joinable!(queue_entries -> users (user_id));
diesel::joinable!(reservations -> bookings (booking_id));
diesel::joinable!(reservations -> chargers (charger_id));
diesel::joinable!(reservations -> queue_entries (queue_entry_id));
diesel::joinable!(reservations -> users (user_id));
diesel::joinable!(revenue_entries -> bookings (booking_id));
diesel::joinable!(revenue_entries -> charging_sessions (session_id));
diesel::joinable!(revenue_entries -> stations (station_id));
diesel::joinable!(revenue_entries -> users (owner_id));
diesel::joinable!(rfid_cards -> users (user_id));
diesel::joinable!(stations -> users (owner_id));
diesel::joinable!(wallet_entries -> wallets (user_id));
diesel::joinable!(wallets -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    auth_tokens,
    bookings,
    chargers,
    charging_sessions,
    connector_status_history,
    connectors,
    login_attempts,
    meter_readings,
    notification_deliveries,
    notifications,
    ocpp_messages,
    payments,
    queue_entries,
    reservations,
    revenue_entries,
    rfid_cards,
    stations,
    users,
    wallet_entries,
    wallets,
);
