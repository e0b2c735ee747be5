"""Bearer-token check for the admin routes (adding/deleting documents, rebuilding the index).

No token configured → 403 explaining how to configure one; missing or wrong token → 401.
The comparison is constant-time (`hmac.compare_digest`).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.api.errors import ApiError

bearer_scheme = HTTPBearer(auto_error=False, scheme_name="AdminToken",
                           description="POLICYQA_ADMIN_TOKEN as `Authorization: Bearer <token>`")


class AdminDisabled(ApiError):
    def __init__(self) -> None:
        super().__init__(
            403, "admin_disabled",
            "管理接口未启用：请设置环境变量 POLICYQA_ADMIN_TOKEN（例如 `export POLICYQA_ADMIN_TOKEN=$(openssl rand -hex 24)`）"
            "后重启服务，并在请求中带上 `Authorization: Bearer <令牌>`",
            "admin routes are disabled: set the environment variable POLICYQA_ADMIN_TOKEN (for example "
            "`export POLICYQA_ADMIN_TOKEN=$(openssl rand -hex 24)`), restart the service, and send "
            "`Authorization: Bearer <token>`")


class Unauthorized(ApiError):
    def __init__(self, missing: bool) -> None:
        if missing:
            zh, en = "缺少管理令牌：请发送 `Authorization: Bearer <令牌>`", \
                "admin token missing: send `Authorization: Bearer <token>`"
        else:
            zh, en = "管理令牌错误", "wrong admin token"
        super().__init__(401, "unauthorized", zh, en, headers={"WWW-Authenticate": "Bearer"})


def token_matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def check_admin(expected: str | None, credentials: HTTPAuthorizationCredentials | None) -> None:
    if not expected:
        raise AdminDisabled()
    if credentials is None or not credentials.credentials:
        raise Unauthorized(missing=True)
    if credentials.scheme.lower() != "bearer" or not token_matches(credentials.credentials, expected):
        raise Unauthorized(missing=False)


def admin_dependency(expected: str | None) -> Callable[..., None]:
    """A FastAPI dependency that admits only requests carrying the configured admin token."""

    def require_admin(
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]) -> None:
        check_admin(expected, credentials)

    return require_admin
