DROP TABLE notifications;
DROP TABLE budget_alerts;
DROP TABLE budgets;
