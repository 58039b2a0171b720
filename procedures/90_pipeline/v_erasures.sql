-- etl.v_erasures: the erased customers (docs/data-contract.md, "Personal data"): one row per
-- customer id erased by etl.erase_customer, with the request's reference, when it committed
-- and how many stored rows it changed. It holds no identifier. Recreated on every apply.
drop view if exists etl.v_erasures;

create view etl.v_erasures as
select e.customer_id, e.reference, e.erased_at, e.rows_changed
from etl.erasure e;

comment on view etl.v_erasures is
    'Erased customers (etl.erase_customer): id, request reference, when, rows changed; no '
    'identifier';
comment on column etl.v_erasures.customer_id is 'The erased customer id';
comment on column etl.v_erasures.reference is 'The request''s ticket or reference';
comment on column etl.v_erasures.erased_at is 'When the erasure committed';
comment on column etl.v_erasures.rows_changed is 'Stored rows the erasure changed';
