from typing import Annotated

from fastapi import Depends, Request

from retail.kernel.events import FeedFollower
from retail.search.config import SearchSettings
from retail.search.ports import Index


def get_index(request: Request) -> Index:
    index: Index = request.app.state.index
    return index


def get_followers(request: Request) -> list[FeedFollower]:
    followers: dict[str, FeedFollower] = request.app.state.followers
    return list(followers.values())


def get_settings(request: Request) -> SearchSettings:
    settings: SearchSettings = request.app.state.settings
    return settings


IndexDep = Annotated[Index, Depends(get_index)]
Followers = Annotated[list[FeedFollower], Depends(get_followers)]
SettingsDep = Annotated[SearchSettings, Depends(get_settings)]
