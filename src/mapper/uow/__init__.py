"""The unit of work package: identity map, change sets, commit order, loading, repositories."""

from mapper.uow.repository import Repository
from mapper.uow.unit_of_work import UnitOfWork, UnitOfWorkState

__all__ = ["Repository", "UnitOfWork", "UnitOfWorkState"]
