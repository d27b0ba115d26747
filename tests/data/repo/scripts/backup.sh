#!/usr/bin/env bash
# Nightly backup: archive the data folder and delete archives older than two weeks.
set -euo pipefail

BACKUP_DIR=${BACKUP_DIR:-/var/backups/app}
KEEP_DAYS=14

make_archive() {
  local stamp
  stamp=$(date +%Y%m%d)
  tar -czf "$BACKUP_DIR/data-$stamp.tar.gz" /srv/app/data
}

rotate_archives() {
  find "$BACKUP_DIR" -name 'data-*.tar.gz' -mtime +"$KEEP_DAYS" -delete
}

make_archive
rotate_archives
