"""Issue 17, drill-downs: the best seller of every category and month is stored as keys.

``analytics.v_category_best_sellers`` answered "which product sells best in each category,
month by month" from all product-months on every read: the top revenue of each month and
current category by a hash aggregate over ``warehouse.agg_product_monthly`` joined to the
current products, then a second scan for the products holding it, 120-130 ms at 5M orders
(508,000 product-months) where the target is 100 ms.

- ``warehouse.agg_category_best_sellers`` (month, product_id primary key): the
  product-months ranked first by revenue within their month and the product's current
  category, ties included, about 11 rows a month. The view reads these keys and joins the
  figures (agg_product_monthly, by its key) and the names (current dim_product versions)
  at read time: a rename or a new brand needs no write here.
- Kept by ``warehouse.refresh_best_sellers(months)`` in the transaction that changes its
  inputs: the aggregate steps for the months whose product figures they changed, the
  dimension step for the months of a product whose category changed.
- Filled here from the existing product-months (a rank within month and category).

Downgrade: the table is dropped (the view of procedures/ that reads it is dropped with it
and created again by the checkout's procedures).

Revision ID: 0021
Revises: 0020
"""

from alembic import op
from runner.routines import FORGET_ROUTINES_SQL

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(FORGET_ROUTINES_SQL)
    op.execute(
        """
create table warehouse.agg_category_best_sellers (
    month      date not null,
    product_id bigint not null,
    primary key (month, product_id)
);
comment on table warehouse.agg_category_best_sellers is
    'Best sellers: the product-months ranked first by revenue within their month and the '
    'product''s current category, ties included (warehouse.refresh_best_sellers)';
comment on column warehouse.agg_category_best_sellers.month is 'First day of the month';
comment on column warehouse.agg_category_best_sellers.product_id is
    'Product id: its agg_product_monthly row of the month holds its category''s top revenue';
insert into warehouse.agg_category_best_sellers (month, product_id)
select r.month, r.product_id
from (
    select a.month, a.product_id,
           rank() over (partition by a.month, p.category order by a.revenue desc) as r
    from warehouse.agg_product_monthly a
    left join warehouse.dim_product p on p.product_id = a.product_id and p.is_current
) r
where r.r = 1
order by r.month, r.product_id;
analyze warehouse.agg_category_best_sellers;
"""
    )


def downgrade() -> None:
    op.execute(FORGET_ROUTINES_SQL)
    op.execute("drop table warehouse.agg_category_best_sellers cascade")
