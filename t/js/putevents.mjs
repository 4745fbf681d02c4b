// Drive @aws-sdk/client-eventbridge against mod_apidest, unchanged except for
// the endpoint: node putevents.mjs <endpoint> <Operation> [<input as JSON>]
// Prints one JSON line: {"ok": <output>, "status": <http status>} and exits
// 0, or {"error": {"name", "message", "fault", "status"}} and exits 1.
// Dates in the output are shown as {"$date": "<ISO 8601>"}, so a caller can
// tell that the SDK parsed a timestamp. An entry's "Time" given as a string
// is sent as a Date (the SDK then sends epoch seconds with milliseconds).
import * as eb from "@aws-sdk/client-eventbridge";

const [endpoint, operation, inputText = "{}"] = process.argv.slice(2);

function show(v) {
    if (v instanceof Date) {
        return { $date: v.toISOString() };
    }
    if (Array.isArray(v)) {
        return v.map(show);
    }
    if (v && typeof v === "object") {
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, show(x)]));
    }
    return v;
}

function prepare(op, input) {
    if (op === "PutEvents" && Array.isArray(input.Entries)) {
        for (const e of input.Entries) {
            if (e && typeof e.Time === "string") {
                e.Time = new Date(e.Time);
            }
        }
    }
    return input;
}

const Command = eb[`${operation}Command`];
if (!endpoint || !Command) {
    console.log(JSON.stringify({ error: { name: "Usage", message: `no command ${operation}` } }));
    process.exit(2);
}
const client = new eb.EventBridgeClient({
    endpoint,
    region: process.env.AWS_REGION || "us-east-1",
    credentials: {
        accessKeyId: "AKIDEXAMPLE",
        secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    },
    maxAttempts: 1,
});
try {
    const out = await client.send(new Command(prepare(operation, JSON.parse(inputText))));
    const { $metadata, ...rest } = out;
    console.log(JSON.stringify({ ok: show(rest), status: $metadata.httpStatusCode }));
} catch (e) {
    console.log(JSON.stringify({
        error: { name: e.name, message: e.message, fault: e.$fault,
                 status: e.$metadata ? e.$metadata.httpStatusCode : undefined },
    }));
    process.exit(1);
}
