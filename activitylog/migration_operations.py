"""
Index changes that a large log can take while it is being written: on PostgreSQL they
build and drop indexes CONCURRENTLY, so logins keep being recorded; elsewhere (SQLite, the
demo) they are Django's plain operations. A migration that uses them sets `atomic = False`,
because CONCURRENTLY cannot run inside a transaction.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations


class _ConcurrentlyOnPostgreSQL:
    """The operation's CONCURRENTLY twin (`_concurrent()`) on PostgreSQL, Django's own elsewhere."""

    def _concurrent(self):
        raise NotImplementedError

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            self._concurrent().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            self._concurrent().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class AddIndexWithoutBlockingWrites(_ConcurrentlyOnPostgreSQL, migrations.AddIndex):
    def _concurrent(self):
        return AddIndexConcurrently(self.model_name, self.index)


class RemoveIndexWithoutBlockingWrites(_ConcurrentlyOnPostgreSQL, migrations.RemoveIndex):
    def _concurrent(self):
        return RemoveIndexConcurrently(self.model_name, self.name)
