CREATE TABLE accounts (
  id serial PRIMARY KEY,
  owner text NOT NULL UNIQUE,
  balance_cents integer NOT NULL CHECK (balance_cents >= 0)
);
