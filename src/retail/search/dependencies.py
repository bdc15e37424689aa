"""`Annotated` dependencies: the index (what search's use cases take first, in the place
other services' `Deps` bundle has), its followers, and the settings."""

from typing import Annotated

from fastapi import Depends, Request

from retail.search.config import SearchSettings
from retail.search.ports import Index
from retail.search.service import Following

# async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per request.


async def get_index(request: Request) -> Index:
    index: Index = request.app.state.index
    return index


async def get_following(request: Request) -> Following:
    following: Following = request.app.state.following
    return following


async def get_settings(request: Request) -> SearchSettings:
    settings: SearchSettings = request.app.state.settings
    return settings


IndexDep = Annotated[Index, Depends(get_index)]
FollowingDep = Annotated[Following, Depends(get_following)]
SettingsDep = Annotated[SearchSettings, Depends(get_settings)]
