DROP TABLE goals;
DROP TABLE recurring;
