DROP TABLE password_resets;
DROP TABLE webhooks;
DROP TABLE notification_preferences;
DROP INDEX notifications_webhook_idx;
DROP INDEX notifications_outbox_idx;
ALTER TABLE notifications DROP COLUMN response_status;
ALTER TABLE notifications DROP COLUMN last_error;
ALTER TABLE notifications DROP COLUMN webhook_id;
