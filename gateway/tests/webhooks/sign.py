"""Signs webhook test requests with each publisher's own library, for webhooks_e2e.rs.

Reads a JSON list of jobs on stdin and prints a JSON list of results (header maps, or
public keys for the "ed25519_public" job). Only the publishers' libraries compute
signatures here; where a publisher ships no library (Zoom, Shopify, faas-cli) the job
follows the publisher's documented recipe with the standard library and says so.
"""

import base64
import datetime
import hashlib
import hmac
import json
import sys
import urllib.parse

import nacl.signing
import slack_sdk.signature
import standardwebhooks
import stripe
from twilio.request_validator import RequestValidator


def utc(ts):
    return datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)


def stripe_job(j):
    header = stripe.WebhookSignature.generate_signature_header(
        j["body"], j["secret"], timestamp=j["timestamp"]
    )
    return {"stripe-signature": header}


def slack_job(j):
    verifier = slack_sdk.signature.SignatureVerifier(j["secret"])
    ts = str(j["timestamp"])
    return {
        "x-slack-signature": verifier.generate_signature(timestamp=ts, body=j["body"]),
        "x-slack-request-timestamp": ts,
    }


def standard_job(j):
    wh = standardwebhooks.Webhook(j["secret"])
    return {
        "webhook-id": j["id"],
        "webhook-timestamp": str(j["timestamp"]),
        "webhook-signature": wh.sign(j["id"], utc(j["timestamp"]), j["body"]),
    }


def standard_v1a_job(j):
    # The Python standardwebhooks package signs v1 only; v1a is Ed25519 over the same
    # content, signed here by PyNaCl.
    key = nacl.signing.SigningKey(bytes.fromhex(j["seed"]))
    content = f'{j["id"]}.{j["timestamp"]}.{j["body"]}'.encode()
    sig = base64.b64encode(key.sign(content).signature).decode()
    return {
        "webhook-id": j["id"],
        "webhook-timestamp": str(j["timestamp"]),
        "webhook-signature": f"v1a,{sig}",
    }


def discord_job(j):
    key = nacl.signing.SigningKey(bytes.fromhex(j["seed"]))
    ts = str(j["timestamp"])
    sig = key.sign((ts + j["body"]).encode()).signature.hex()
    return {"x-signature-ed25519": sig, "x-signature-timestamp": ts}


def ed25519_public_job(j):
    public = bytes(nacl.signing.SigningKey(bytes.fromhex(j["seed"])).verify_key)
    return {"hex": public.hex(), "whpk": "whpk_" + base64.b64encode(public).decode()}


def twilio_job(j):
    validator = RequestValidator(j["secret"])
    params = dict(urllib.parse.parse_qsl(j["body"], keep_blank_values=True))
    return {"x-twilio-signature": validator.compute_signature(j["url"], params)}


def zoom_job(j):
    # Zoom publishes no signing library; its documented recipe:
    # "v0=" + hex(HMAC-SHA256(secret token, "v0:{timestamp}:{body}")).
    msg = f'v0:{j["timestamp"]}:{j["body"]}'.encode()
    sig = hmac.new(j["secret"].encode(), msg, hashlib.sha256).hexdigest()
    return {"x-zm-signature": "v0=" + sig, "x-zm-request-timestamp": str(j["timestamp"])}


def shopify_job(j):
    # Shopify's documented recipe: base64(HMAC-SHA256(client secret, raw body)).
    tag = hmac.new(j["secret"].encode(), j["body"].encode(), hashlib.sha256).digest()
    return {"x-shopify-hmac-sha256": base64.b64encode(tag).decode()}


def faas_cli_job(j):
    # faas-cli invoke --sign <header> --key <secret>: "sha256=" + hex HMAC-SHA256 of body.
    tag = hmac.new(j["secret"].encode(), j["body"].encode(), hashlib.sha256).hexdigest()
    return {j["header"]: "sha256=" + tag}


JOBS = {
    "stripe": stripe_job,
    "slack": slack_job,
    "standard": standard_job,
    "standard_v1a": standard_v1a_job,
    "discord": discord_job,
    "ed25519_public": ed25519_public_job,
    "twilio": twilio_job,
    "zoom": zoom_job,
    "shopify": shopify_job,
    "faas_cli": faas_cli_job,
}

if __name__ == "__main__":
    jobs = json.load(sys.stdin)
    json.dump([JOBS[j["op"]](j) for j in jobs], sys.stdout)
