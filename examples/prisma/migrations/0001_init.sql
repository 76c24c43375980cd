-- The schema, as a plain SQL migration. examples/prisma/schema.prisma describes the same tables for Prisma Client.
CREATE TABLE users (
  id         serial PRIMARY KEY,
  email      text NOT NULL UNIQUE,
  name       text NOT NULL,
  created_at timestamptz(3) NOT NULL DEFAULT now()
);

CREATE TABLE posts (
  id        serial PRIMARY KEY,
  title     text NOT NULL,
  published boolean NOT NULL DEFAULT false,
  author_id integer NOT NULL REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX posts_author_id_idx ON posts (author_id);
