"""MongoDB adapter: collections and indexes, the repositories (domain objects in and out), the
unit of work, on the kernel's MongoStore.

Whatever two requests may race on is one conditional write decided by the server: the unique
email index, a token's `use` (`used_at` still unset), the throttle's `$inc` where no lock
holds, the cart's `$inc` where the sum stays within the limit. (The kernel's writers also
take turns, per service; nothing here counts on it for correctness.)

Documents leave out fields that are unset rather than storing null, and the throttle's
instants are epoch milliseconds, as the kernel's leases are: both compare the same on every
server, and the throttle's arithmetic on them is exact.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from pymongo import ASCENDING, DESCENDING, IndexModel

from retail.auth.domain import CartLine, Page, RefreshToken, ThrottlePolicy, User
from retail.auth.exceptions import EmailTaken
from retail.kernel.mongo import (
    OUTBOX,
    VISIBLE,
    Document,
    IndexPlan,
    MongoEventLog,
    MongoUnitOfWork,
    Unit,
    UnitCollection,
    as_utc,
    duplicate_key_as,
)
from retail.kernel.security import Role

USERS = "users"
REFRESH_TOKENS = "refresh_tokens"
LOGIN_THROTTLE = "login_throttle"
CART_ITEMS = "cart_items"

# No index here is compound over _id: nx-27017 (CI's stand-in) fails every write to such a
# collection. Ties in a sort by created_at are few, and MongoDB orders them in memory.
INDEXES: IndexPlan = {
    USERS: [
        # Emails are stored normalised, so this is unique case-insensitively.
        IndexModel([("email", ASCENDING)], name="uq_email", unique=True),
        # Walked backwards for "newest first": one key serves either direction.
        IndexModel([("created_at", ASCENDING)], name="created_at"),
    ],
    REFRESH_TOKENS: [
        IndexModel([("token_hash", ASCENDING)], name="uq_token_hash", unique=True),
        IndexModel([("family_id", ASCENDING)], name="family_id"),
        IndexModel([("user_id", ASCENDING)], name="user_id"),
        IndexModel([("expires_at", ASCENDING)], name="expires_at"),
    ],
    LOGIN_THROTTLE: [IndexModel([("last_failure_ms", ASCENDING)], name="last_failure_ms")],
    CART_ITEMS: [IndexModel([("user_id", ASCENDING), ("added_at", ASCENDING)], name="user_added")],
}


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _without_nulls(document: Document) -> Document:
    return {key: value for key, value in document.items() if value is not None}


def _user(document: Document) -> User:
    return User(
        id=document["_id"],
        email=document["email"],
        name=document["name"],
        role=cast(Role, document["role"]),
        password_hash=document["password_hash"],
        created_at=as_utc(document["created_at"]),
        updated_at=as_utc(document["updated_at"]),
        # Users stored before these fields existed are active, at version 0.
        is_active=bool(document.get("is_active", True)),  # nx-27017 answers 0/1
        token_version=int(document.get("token_version", 0)),
    )


def _refresh_token(document: Document) -> RefreshToken:
    def instant(name: str) -> datetime | None:
        value = document.get(name)
        return None if value is None else as_utc(value)

    return RefreshToken(
        id=document["_id"],
        family_id=document["family_id"],
        user_id=document["user_id"],
        token_hash=document["token_hash"],
        issued_at=as_utc(document["issued_at"]),
        expires_at=as_utc(document["expires_at"]),
        used_at=instant("used_at"),
        revoked_at=instant("revoked_at"),
    )


class MongoUserRepository:
    def __init__(self, unit: Unit) -> None:
        self._users = unit.collection(USERS)

    async def add(self, user: User) -> None:
        document = {
            "_id": user.id,
            "email": user.email,
            "name": user.name,
            "role": user.role,
            "password_hash": user.password_hash,
            "created_at": user.created_at,
            "updated_at": user.updated_at,
        }
        with duplicate_key_as(EmailTaken):
            await self._users.insert_one(document)

    async def get(self, user_id: str) -> User | None:
        document = await self._users.find_one({"_id": user_id})
        return _user(document) if document else None

    async def lock(self, user_id: str) -> User | None:
        # The unit of work holds the service's writer turn, which is the lock here.
        return await self.get(user_id)

    async def get_by_email(self, email: str) -> User | None:
        document = await self._users.find_one({"email": email})
        return _user(document) if document else None

    async def page(self, *, offset: int, limit: int) -> Page[User]:
        total = await self._users.count({})
        found = await self._users.find(
            {}, sort=[("created_at", DESCENDING), ("_id", DESCENDING)], skip=offset, limit=limit
        )
        return Page([_user(document) for document in found], total)

    async def update_profile(
        self, user_id: str, now: datetime, *, name: str | None, password_hash: str | None
    ) -> bool:
        changes = _without_nulls({"updated_at": now, "name": name, "password_hash": password_hash})
        result = await self._users.update_one({"_id": user_id}, {"$set": changes})
        return result.matched_count == 1

    async def set_access(
        self, user_id: str, now: datetime, *, role: Role, is_active: bool
    ) -> int | None:
        changed = await self._users.find_one_and_update(
            {"_id": user_id},
            {
                "$set": {"role": role, "is_active": is_active, "updated_at": now},
                "$inc": {"token_version": 1},
            },
        )
        return None if changed is None else int(changed["token_version"])

    async def lock_admin_ids(self) -> list[str]:
        # Writers take turns (the unit's writer lock), so no demotion runs beside this one.
        admins = await self._users.find(
            {"role": "admin", "is_active": {"$ne": False}}, sort=[("_id", ASCENDING)]
        )
        return [document["_id"] for document in admins]


class MongoRefreshTokenRepository:
    def __init__(self, unit: Unit) -> None:
        self._tokens = unit.collection(REFRESH_TOKENS)

    async def add(self, token: RefreshToken) -> None:
        document = {
            "_id": token.id,
            "family_id": token.family_id,
            "user_id": token.user_id,
            "token_hash": token.token_hash,
            "issued_at": token.issued_at,
            "expires_at": token.expires_at,
            "used_at": token.used_at,
            "revoked_at": token.revoked_at,
        }
        await self._tokens.insert_one(_without_nulls(document))

    async def find(self, token_hash: str) -> RefreshToken | None:
        document = await self._tokens.find_one({"token_hash": token_hash})
        return _refresh_token(document) if document else None

    async def use(self, token_id: str, now: datetime) -> bool:
        result = await self._tokens.update_one(
            {"_id": token_id, "used_at": None, "revoked_at": None}, {"$set": {"used_at": now}}
        )
        return result.matched_count == 1

    async def revoke_family(self, family_id: str, now: datetime) -> int:
        return await self._revoke({"family_id": family_id}, now)

    async def revoke_user_families(
        self, user_id: str, now: datetime, *, keep_family: str | None
    ) -> list[str]:
        query: Document = {"user_id": user_id}
        if keep_family is not None:
            query["family_id"] = {"$ne": keep_family}
        live = await self._tokens.find({**query, "revoked_at": None})
        families = set()
        for document in live:
            result = await self._tokens.update_one(
                {"_id": document["_id"], "revoked_at": None}, {"$set": {"revoked_at": now}}
            )
            if result.matched_count:
                families.add(document["family_id"])
        return sorted(families)

    async def purge_expired_families(self, now: datetime) -> int:
        expired = await self._tokens.find({"expires_at": {"$lt": now}})
        families = list({document["family_id"] for document in expired})
        live = await self._tokens.find(
            {"family_id": {"$in": families}, "expires_at": {"$gte": now}}
        )
        alive = {document["family_id"] for document in live}
        dead = [document["_id"] for document in expired if document["family_id"] not in alive]
        return await _delete_each(self._tokens, dead)

    async def _revoke(self, query: Document, now: datetime) -> int:
        """Each live token by its own conditional write: a unit of work writes documents one
        by one (its journal keeps each one's before-image)."""
        live = await self._tokens.find({**query, "revoked_at": None})
        revoked = 0
        for document in live:
            result = await self._tokens.update_one(
                {"_id": document["_id"], "revoked_at": None}, {"$set": {"revoked_at": now}}
            )
            revoked += result.matched_count
        return revoked


class MongoLoginThrottle:
    """One document per key: `{_id: key, failures, last_failure_ms, locked_until_ms}`, with
    `locked_until_ms` 0 when no lock was ever set."""

    def __init__(self, unit: Unit) -> None:
        self._keys = unit.collection(LOGIN_THROTTLE)

    async def admit(self, key: str, policy: ThrottlePolicy, now: datetime) -> datetime | None:
        now_ms, quiet_ms = _ms(now), _ms(now - policy.window)
        fresh = {"failures": 0, "last_failure_ms": now_ms, "locked_until_ms": 0}
        await self._keys.update_one({"_id": key}, {"$setOnInsert": fresh}, upsert=True)
        # A key quiet for the window starts from no failures again.
        quiet = {"last_failure_ms": {"$lt": quiet_ms}, "locked_until_ms": {"$lt": quiet_ms}}
        await self._keys.update_one({"_id": key, **quiet}, {"$set": {"failures": 0}})
        # Count one more where no lock holds: a locked key matches nothing, counts nothing.
        counted = await self._keys.find_one_and_update(
            {"_id": key, "locked_until_ms": {"$lte": now_ms}},
            {"$inc": {"failures": 1}, "$set": {"last_failure_ms": now_ms}},
        )
        if counted is None:
            locked = await self._keys.find_one({"_id": key})
            return _from_ms(int(locked["locked_until_ms"])) if locked else None
        lock = policy.lock_after(int(counted["failures"]))
        if lock:  # $max: of two racing failures, the longer lock stands
            await self._lock(key, now + lock)
        return None

    async def _lock(self, key: str, until: datetime) -> None:
        await self._keys.update_one({"_id": key}, {"$max": {"locked_until_ms": _ms(until)}})

    async def forgive(self, key: str) -> None:
        await self._keys.update_one(
            {"_id": key, "failures": {"$gt": 0}}, {"$inc": {"failures": -1}}
        )

    async def clear(self, key: str) -> None:
        await self._keys.delete_one({"_id": key})

    async def purge_quiet(self, before: datetime) -> int:
        before_ms = _ms(before)
        quiet = await self._keys.find(
            {"last_failure_ms": {"$lt": before_ms}, "locked_until_ms": {"$lt": before_ms}}
        )
        return await _delete_each(self._keys, [document["_id"] for document in quiet])


def _cart_key(user_id: str, product_id: str) -> str:
    # User ids are auth's UUIDs, which hold no ":", so the key names one line unambiguously.
    return f"{user_id}:{product_id}"


def _cart_line(document: Document) -> CartLine:
    return CartLine(
        user_id=document["user_id"],
        product_id=document["product_id"],
        quantity=int(document["quantity"]),
        added_at=as_utc(document["added_at"]),
    )


class MongoCartRepository:
    """One document per line: `{_id: "<user_id>:<product_id>", user_id, product_id, quantity,
    added_at}`."""

    def __init__(self, unit: Unit) -> None:
        self._items = unit.collection(CART_ITEMS)

    async def lines(self, user_id: str) -> list[CartLine]:
        found = await self._items.find(
            {"user_id": user_id}, sort=[("added_at", ASCENDING), ("product_id", ASCENDING)]
        )
        return [_cart_line(document) for document in found]

    async def get(self, user_id: str, product_id: str) -> CartLine | None:
        document = await self._items.find_one({"_id": _cart_key(user_id, product_id)})
        return _cart_line(document) if document else None

    async def count(self, user_id: str) -> int:
        return await self._items.count({"user_id": user_id})

    async def add(self, line: CartLine, *, limit: int) -> int | None:
        if line.quantity > limit:  # a new line would pass it too
            return None
        key = _cart_key(line.user_id, line.product_id)
        # Add where the sum stays within the limit; else create the line if there is none
        # (an insert-only upsert: no duplicate-key error to abort a transaction); else try
        # the add once more, in case another request created the line in between.
        room = {"_id": key, "quantity": {"$lte": limit - line.quantity}}
        added = await self._items.find_one_and_update(room, {"$inc": {"quantity": line.quantity}})
        if added is not None:
            return int(added["quantity"])
        new = {
            "user_id": line.user_id,
            "product_id": line.product_id,
            "quantity": line.quantity,
            "added_at": line.added_at,
        }
        created = await self._items.update_one({"_id": key}, {"$setOnInsert": new}, upsert=True)
        if created.upserted_id is not None:
            return line.quantity
        added = await self._items.find_one_and_update(room, {"$inc": {"quantity": line.quantity}})
        return None if added is None else int(added["quantity"])

    async def set_quantity(self, user_id: str, product_id: str, quantity: int) -> bool:
        result = await self._items.update_one(
            {"_id": _cart_key(user_id, product_id)}, {"$set": {"quantity": quantity}}
        )
        return result.matched_count == 1

    async def remove(self, user_id: str, product_id: str) -> bool:
        return await self._items.delete_one({"_id": _cart_key(user_id, product_id)})

    async def clear(self, user_id: str) -> int:
        lines = await self._items.find({"user_id": user_id})
        return await _delete_each(self._items, [document["_id"] for document in lines])


async def _delete_each(collection: UnitCollection, ids: list[Any]) -> int:
    deleted = 0
    for doc_id in ids:
        deleted += await collection.delete_one({"_id": doc_id})
    return deleted


# Events purged per pass: each is its own write in the unit of work; the rest go next time.
MAX_PURGED_EVENTS = 2000


class MongoAuthEventLog(MongoEventLog):
    def __init__(self, unit: Unit) -> None:
        super().__init__(unit)
        self._outbox = unit.collection(OUTBOX)

    async def purge_before(self, before: datetime) -> int:
        newest = await self._outbox.find({}, sort=[("seq", DESCENDING)], limit=1)
        if not newest:
            return 0
        # Only visible events: a pending one belongs to a unit of work still open.
        old = await self._outbox.find(
            {"occurred_at": {"$lt": before}, "seq": {"$lt": newest[0]["seq"]}, "state": VISIBLE},
            sort=[("seq", ASCENDING)],
            limit=MAX_PURGED_EVENTS,
        )
        return await _delete_each(self._outbox, [document["_id"] for document in old])


class AuthMongoUnitOfWork(MongoUnitOfWork):
    users: MongoUserRepository
    refresh_tokens: MongoRefreshTokenRepository
    throttle: MongoLoginThrottle
    cart: MongoCartRepository
    events: MongoAuthEventLog

    def _bind(self, unit: Unit) -> None:
        self.users = MongoUserRepository(unit)
        self.refresh_tokens = MongoRefreshTokenRepository(unit)
        self.throttle = MongoLoginThrottle(unit)
        self.cart = MongoCartRepository(unit)
        self.events = MongoAuthEventLog(unit)
