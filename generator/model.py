"""What the database will accept: the generator's model of validation across batches.

It holds what production will know after each batch (keys, each customer's e-mail), the
orphans still waiting for a parent, and a few keys rejected for good. `validate` applies
the rules that depend on other rows (duplicate_key, unknown_*, email_conflict) to the
records of one chunk, in file order, and updates that knowledge as the database would.
`resolve` re-validates waiting orphans after a batch, as the pipeline does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generator.contract import CUSTOMERS, RULE_BIT, UNKNOWN_RULE, FileSpec
from generator.layout import NO_ID, Records

REFERENCED = ("customers", "products", "transactions")
UNKNOWN_BITS = sum(RULE_BIT[rule] for rule in UNKNOWN_RULE.values())
REJECTED_SAMPLE = 200


@dataclass
class Orphan:
    """A record rejected only for unknown parents, whose parents may still arrive."""

    batch: int
    file: str
    line: int
    entity: str
    key: int
    missing: tuple[tuple[str, int], ...]
    resolved_by: int | None = None


@dataclass(frozen=True)
class Outcome:
    rules: np.ndarray  # every rule of each entry, as a bit mask
    accepted: np.ndarray


class AcceptanceModel:
    """Known keys and e-mails of production, batch after batch.

    `last_ids[entity][b]` is the highest id of that entity first delivered in batches up to
    b; ids above it may still arrive. An id at or below it that is not known arrives later
    only if it is a waiting orphan transaction or a rejected key the source sends again
    (`expect`): each new key is delivered once, and changes repeat known keys only.
    """

    def __init__(self, totals: dict[str, int], last_ids: dict[str, np.ndarray]) -> None:
        """`totals`: ids per entity; `last_ids`: see the class."""
        self.totals = totals
        self.last_ids = last_ids
        self.known = {entity: np.zeros(totals[entity] + 1, dtype=bool) for entity in REFERENCED}
        self.email_owner: dict[str, int] = {}
        self.email_of: dict[int, str] = {}
        self.pending: list[Orphan] = []
        self.pending_transactions: set[int] = set()
        self.rejected: dict[str, list[int]] = {entity: [] for entity in REFERENCED}
        self.expected: dict[str, dict[int, int]] = {entity: {} for entity in REFERENCED}

    def is_known(self, entity: str, ids: np.ndarray) -> np.ndarray:
        known = self.known[entity]
        inside = (ids > 0) & (ids < len(known))
        result = np.zeros(len(ids), dtype=bool)
        result[inside] = known[ids[inside]]
        return result

    def validate(self, spec: FileSpec, records: Records, batch: int) -> Outcome:
        """Final rules and acceptance of one chunk's records; updates what is known."""
        rules = records.rules.copy()
        duplicate = duplicates(records) if records.has_edits else np.zeros(len(records), bool)
        rules[duplicate] = RULE_BIT["duplicate_key"]
        live = records.is_record & ~duplicate
        for column, entity in spec.references:
            ids = records.refs[column]
            unknown = live & (ids != NO_ID) & ~self.is_known(entity, ids)
            rules[unknown] |= RULE_BIT[UNKNOWN_RULE[entity]]
        if spec is CUSTOMERS:
            self._email_conflicts(records, rules, live)
        accepted = records.is_record & (rules == 0)
        if spec.entity in self.known:
            keys = records.key[accepted]
            self.known[spec.entity][keys[keys <= self.totals[spec.entity]]] = True
        if spec is CUSTOMERS:
            self._claim_emails(records, accepted)
        self._register_orphans(spec, records, rules, live, batch)
        self._sample_rejected(spec, records, accepted)
        return Outcome(rules=rules, accepted=accepted)

    def resolve(self, batch: int) -> list[Orphan]:
        """Orphans whose parents are now known, repeatedly; they resolve by this batch."""
        resolved: list[Orphan] = []
        progress = True
        while progress:
            progress = False
            waiting = []
            for orphan in self.pending:
                if all(self._known_id(entity, id_) for entity, id_ in orphan.missing):
                    orphan.resolved_by = batch
                    resolved.append(orphan)
                    progress = True
                    if orphan.entity in self.known:
                        self.known[orphan.entity][orphan.key] = True
                    if orphan.entity == "transactions":
                        self.pending_transactions.discard(orphan.key)
                else:
                    waiting.append(orphan)
            self.pending = waiting
        self._drop_hopeless(batch)
        return resolved

    def expect(self, entity: str, ids: np.ndarray, batch: int) -> None:
        """Rejected new keys that the source sends again, corrected, in `batch`."""
        expected = self.expected[entity]
        for id_ in ids.tolist():
            expected[id_] = batch
        self.rejected[entity] = [id_ for id_ in self.rejected[entity] if id_ not in expected]

    def future_ids(self, entity: str, batch: int) -> tuple[int, int]:
        """Ids of `entity` first delivered in the batch after `batch`: [low, high]."""
        last = self.last_ids[entity]
        if batch + 1 >= len(last):
            return 1, 0
        return int(last[batch]) + 1, int(last[batch + 1])

    def _known_id(self, entity: str, id_: int) -> bool:
        known = self.known[entity]
        return 0 < id_ < len(known) and bool(known[id_])

    def _may_arrive(self, entity: str, ids: np.ndarray, batch: int) -> np.ndarray:
        later = (ids > self.last_ids[entity][batch]) & (ids <= self.totals[entity])
        if entity == "transactions" and self.pending_transactions:
            pending = np.fromiter(self.pending_transactions, dtype=np.int64)
            later |= np.isin(ids, pending)
        expected = [id_ for id_, due in self.expected[entity].items() if due > batch]
        if expected:
            later |= np.isin(ids, np.array(expected, dtype=np.int64))
        return later

    def _email_conflicts(self, records: Records, rules: np.ndarray, live: np.ndarray) -> None:
        """email_conflict: owned by another id in production, or by an earlier accepted line."""
        emails = records.emails or []
        keys = records.key.tolist()
        claims: dict[str, int] = {}
        conflict = RULE_BIT["email_conflict"]
        for entry in np.flatnonzero(live).tolist():
            email = emails[entry]
            if email is None:
                continue
            key = keys[entry]
            owner = self.email_owner.get(email)
            claim = claims.get(email)
            if (owner is not None and owner != key) or (claim is not None and claim != key):
                rules[entry] |= conflict
            elif rules[entry] == 0:
                claims[email] = key

    def _claim_emails(self, records: Records, accepted: np.ndarray) -> None:
        emails = records.emails or []
        for entry in np.flatnonzero(accepted).tolist():
            key = int(records.key[entry])
            email = emails[entry]
            old = self.email_of.get(key)
            if old == email or email is None:
                continue
            if old is not None and self.email_owner.get(old) == key:
                del self.email_owner[old]
            self.email_owner[email] = key
            self.email_of[key] = email

    def _register_orphans(
        self, spec: FileSpec, records: Records, rules: np.ndarray, live: np.ndarray, batch: int
    ) -> None:
        orphan = live & (rules != 0) & ((rules & ~UNKNOWN_BITS) == 0)
        if not orphan.any():
            return
        may_resolve = orphan.copy()
        for column, entity in spec.references:
            missing = orphan & ((rules & RULE_BIT[UNKNOWN_RULE[entity]]) != 0)
            may_resolve &= ~missing | self._may_arrive(entity, records.refs[column], batch)
        for entry in np.flatnonzero(may_resolve).tolist():
            missing_parents = tuple(
                (entity, int(records.refs[column][entry]))
                for column, entity in spec.references
                if rules[entry] & RULE_BIT[UNKNOWN_RULE[entity]]
            )
            key = int(records.key[entry])
            self.pending.append(
                Orphan(batch, spec.name, int(records.line[entry]), spec.entity, key,
                       missing_parents)
            )  # fmt: skip
            if spec.entity == "transactions":
                self.pending_transactions.add(key)

    def _sample_rejected(self, spec: FileSpec, records: Records, accepted: np.ndarray) -> None:
        """Remember a few keys rejected for good: references to them stay unknown."""
        if spec.entity not in self.known:
            return
        rejected = records.is_record & ~accepted & (records.key != NO_ID)
        keys = records.key[rejected]
        keys = keys[(keys <= self.totals[spec.entity]) & ~self.is_known(spec.entity, keys)]
        expected = self.expected[spec.entity]
        keys = np.array([k for k in keys.tolist() if k not in expected], dtype=np.int64)
        if spec.entity == "transactions" and self.pending_transactions:
            pending = np.fromiter(self.pending_transactions, dtype=np.int64)
            keys = keys[~np.isin(keys, pending)]
        sample = self.rejected[spec.entity] + keys[:REJECTED_SAMPLE].tolist()
        self.rejected[spec.entity] = sample[-REJECTED_SAMPLE:]

    def _drop_hopeless(self, batch: int) -> None:
        """Forget orphans one of whose parents can no longer arrive."""
        changed = True
        while changed:
            changed = False
            waiting = []
            for orphan in self.pending:
                if any(self._lost(entity, id_, batch) for entity, id_ in orphan.missing):
                    if orphan.entity == "transactions":
                        self.pending_transactions.discard(orphan.key)
                    changed = True
                else:
                    waiting.append(orphan)
            self.pending = waiting

    def _lost(self, entity: str, id_: int, batch: int) -> bool:
        if self._known_id(entity, id_):
            return False
        if entity == "transactions" and id_ in self.pending_transactions:
            return False
        if self.expected[entity].get(id_, -1) > batch:
            return False
        return id_ <= self.last_ids[entity][batch] or id_ > self.totals[entity]


def duplicates(records: Records) -> np.ndarray:
    """Every record but the last for a key (integer keys, so `007` is 7)."""
    keyed = np.flatnonzero(records.is_record & (records.key != NO_ID))
    result = np.zeros(len(records), dtype=bool)
    if len(keyed) == 0:
        return result
    reversed_keys = records.key[keyed][::-1]
    _, first_in_reversed = np.unique(reversed_keys, return_index=True)
    result[keyed] = True
    result[keyed[::-1][first_in_reversed]] = False
    return result
