// Signs GitHub webhook test bodies with GitHub's own @octokit/webhooks-methods, for
// webhooks_e2e.rs: reads [{"secret", "body"}] on stdin, prints [{"x-hub-signature-256"}].
import { sign } from "@octokit/webhooks-methods";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const out = [];
for (const job of JSON.parse(input)) {
  out.push({ "x-hub-signature-256": await sign(job.secret, job.body) });
}
process.stdout.write(JSON.stringify(out));
