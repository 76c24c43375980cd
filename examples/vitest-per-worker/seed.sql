-- The data every worker database starts with (loaded once, into the template): 3 customers, 4 products,
-- 2 orders with 3 items.
INSERT INTO customers (email, name) VALUES
  ('ada@example.com', 'Ada'),
  ('grace@example.com', 'Grace'),
  ('linus@example.com', 'Linus');

INSERT INTO products (sku, name, price_cents) VALUES
  ('KB-01', 'Keyboard', 4900),
  ('MS-01', 'Mouse', 1900),
  ('MN-27', 'Monitor', 22900),
  ('CB-USB', 'USB cable', 900);

INSERT INTO orders (customer_id) VALUES (1), (2);

INSERT INTO order_items (order_id, product_id, quantity) VALUES
  (1, 1, 1),
  (1, 2, 2),
  (2, 3, 1);
