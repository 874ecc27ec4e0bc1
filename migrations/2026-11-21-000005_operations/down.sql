DROP TABLE ocpp_messages;
DROP TABLE notification_deliveries;
DROP TABLE notifications;
