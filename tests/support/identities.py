"""Departments, accounts and their tokens, made through the services for tests."""

from fastapi import FastAPI


class Identities:
    """Creates departments and accounts through the services, and mints their tokens."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def token(
        self,
        name: str,
        *,
        department: str = "platform",
        department_kind: str = "platform",
        roles: tuple[str, ...] = ("platform_admin",),
        client: bool = False,
    ) -> str:
        from broker.accounts import service as accounts
        from broker.accounts.schemas import AccountCreate
        from broker.auth import tokens
        from broker.auth.models import AccountKind, Role
        from catalog.departments import service as departments
        from catalog.departments.models import DepartmentKind
        from catalog.departments.schemas import DepartmentCreate

        async with self.app.state.session_factory() as session:
            if await departments.find_by_code(session=session, code=department) is None:
                await departments.create(
                    session=session,
                    data=DepartmentCreate(
                        code=department, name=department, kind=DepartmentKind(department_kind)
                    ),
                )
            account = await accounts.find_by_name(session=session, name=name)
            if account is None:
                account, _secret = await accounts.create(
                    session=session,
                    data=AccountCreate(
                        name=name,
                        display_name=name,
                        # people have no secret to hash, which keeps fixtures fast
                        kind=AccountKind.client if client else AccountKind.person,
                        department_code=department,
                        roles=[Role(r) for r in roles],
                    ),
                )
            minted, _ttl = await tokens.mint(
                session=session, settings=self.app.state.settings, account=account
            )
            await session.commit()
            return minted

    async def headers(self, name: str, **kwargs: object) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token(name, **kwargs)}"}  # type: ignore[arg-type]
