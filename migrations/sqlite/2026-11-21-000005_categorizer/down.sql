DROP INDEX transactions_user_labels;
DROP TABLE merchant_memory;
DROP TABLE rules;
