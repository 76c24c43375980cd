-- Loaded once, into the template: every worker database starts with these rows.
INSERT INTO accounts (owner, balance_cents) VALUES ('ada', 10000), ('grace', 5000), ('linus', 0);
INSERT INTO transfers (from_account, to_account, amount_cents) VALUES (1, 2, 2500);
