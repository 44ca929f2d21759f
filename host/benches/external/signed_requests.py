"""Writes COUNT distinct Standard Webhooks v1 requests signed with SECRET, one per line:
webhook-id, timestamp, signature and body, tab-separated. Each body is a KKI `str.updated`
event carrying one doctor's whole registration, as the KKI simulator sends it."""
import base64, hashlib, hmac, json, sys, time

secret, count = sys.argv[1], int(sys.argv[2])
key = base64.b64decode(secret.removeprefix("whsec_"))
now = int(time.time())
for i in range(count):
    day = 1 + i % 28
    nik = f"3273{1 + i % 40:02d}{day + 40:02d}0685{i % 10000:04d}"
    data = {
        "id_registrasi": f"KKI-{i:07d}", "nomor_str": f"BENCH{i:010d}", "nik": nik,
        "nama": f"dr. Siti Rahayu {i}", "tempat_lahir": "Bandung", "tanggal_lahir": f"1985-06-{day:02d}",
        "jenis_kelamin": "P", "status_str": "aktif", "tanggal_terbit": "2024-01-01",
        "berlaku_sampai": "2029-01-01", "sertifikasi": [{"nama": "ACLS", "status": "berlaku"}],
        "pelatihan": [{"nama": "Pelatihan PPI", "penyelenggara": "PB IDI", "tanggal": "2023-05-01", "jpl": 16}],
        "diperbarui_pada": "2026-11-30T00:00:00.000000Z",
    }
    body = json.dumps({"type": "str.updated", "timestamp": "2026-11-30T00:00:00Z", "data": data}, separators=(",", ":"))
    webhook_id = f"msg_wrk{i:09d}"
    signed = f"{webhook_id}.{now}.{body}".encode()
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    sys.stdout.write(f"{webhook_id}\t{now}\tv1,{signature}\t{body}\n")
