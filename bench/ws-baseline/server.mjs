// The baseline: a minimal broadcast server with Node's `ws`. Clients connect
// to /ws; POST /broadcast sends the request body to every client and answers
// once it has been handed to every socket. Usage: node server.mjs PORT
import { createServer } from "node:http";
import { WebSocketServer } from "ws";

const port = Number(process.argv[2] ?? 8090);
const server = createServer((request, response) => {
  if (request.method === "POST" && request.url === "/broadcast") {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      const message = Buffer.concat(chunks).toString();
      for (const client of sockets.clients) client.send(message);
      response.end("ok");
    });
    return;
  }
  response.writeHead(404).end();
});
const sockets = new WebSocketServer({ server, path: "/ws" });
server.listen(port, "127.0.0.1", () => console.log(`ws baseline on ${port}`));
