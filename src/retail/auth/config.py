from typing import ClassVar

from pydantic import Field, SecretStr, model_validator

from retail.auth.domain import email_problem, password_problem
from retail.kernel.settings import Settings, SettingsError

# Below this cost a leaked hash table falls to a GPU in hours; tests may go lower.
MIN_PRODUCTION_BCRYPT_ROUNDS = 10


class AuthSettings(Settings):
    service_name: ClassVar[str] = "auth"
    service_database_url: str | None = Field(None, validation_alias="AUTH_DATABASE_URL")

    # The first admin, created (or promoted) at start-up when both are set.
    admin_email: str | None = None
    admin_password: SecretStr | None = None
    admin_name: str = Field("Administrator", min_length=1, max_length=100)

    bcrypt_rounds: int = Field(12, ge=4, le=16)

    # Login throttling: each key (account, client address) gets this many failures free;
    # then every further one locks it for 2^(n - free) seconds, at most `login_max_lock`.
    # A key's count is forgotten once it has been quiet (no failure, no lock) for the window.
    login_free_failures_per_account: int = Field(5, ge=1)
    # Higher than per account: one address may be a whole office behind NAT.
    login_free_failures_per_address: int = Field(20, ge=1)
    login_window_seconds: int = Field(15 * 60, ge=1)
    login_max_lock_seconds: int = Field(15 * 60, ge=1)
    # How many proxies in front of us append to X-Forwarded-For. 0: ignore the header
    # (anyone could write it) and use the peer address.
    trusted_proxy_hops: int = Field(0, ge=0, le=10)

    @model_validator(mode="after")
    def _refuse_cheap_hashes_in_production(self) -> "AuthSettings":
        if self.retail_env == "production" and self.bcrypt_rounds < MIN_PRODUCTION_BCRYPT_ROUNDS:
            raise SettingsError(
                f"RETAIL_ENV=production needs BCRYPT_ROUNDS >= {MIN_PRODUCTION_BCRYPT_ROUNDS}"
            )
        return self

    @model_validator(mode="after")
    def _admin_is_usable(self) -> "AuthSettings":
        """Caught at start-up rather than at the first sign-in that fails."""
        if (self.admin_email is None) != (self.admin_password is None):
            raise SettingsError("set both ADMIN_EMAIL and ADMIN_PASSWORD, or neither")
        if self.admin_email is not None and self.admin_password is not None:
            problem = email_problem(self.admin_email) or password_problem(
                self.admin_password.get_secret_value()
            )
            if problem:
                raise SettingsError(f"ADMIN_EMAIL/ADMIN_PASSWORD: {problem}")
        return self
