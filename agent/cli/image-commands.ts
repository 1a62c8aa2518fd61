/** `paddock image ls | import SOURCE NAME | pull REFERENCE [NAME] | default | rm NAME`: the agent's image store. */
import * as path from "node:path";
import { PaddockError } from "../../protocol/errors";
import type { AgentClient } from "../../protocol/client";
import { print } from "./output";
import { renderTable } from "./table";

export async function imageCommand(client: AgentClient, args: string[], o: { json: boolean; insecure?: boolean }): Promise<number> {
  const [verb, ...rest] = args;
  switch (verb) {
    case "ls":
    case undefined: {
      const { images } = await client.request("image/list", {});
      print(o.json, { images }, () =>
        images.length === 0
          ? "No images. Import one with: paddock image import SOURCE NAME"
          : renderTable(["NAME", "DIGEST", "LAYERS", "IMPORTED"], images.map((i) => [i.name, i.digest.slice(0, 19), String(i.layers), i.importedAt.replace("T", " ").slice(0, 19)])),
      );
      return 0;
    }
    case "import": {
      const [source, name] = rest;
      if (!source || !name) throw new PaddockError("E_INVALID_PARAMS", "paddock image import needs a SOURCE and a NAME", "e.g. paddock image import ./debian.tar debian:12 (an OCI image layout or docker save output)");
      const image = await client.request("image/import", { source: path.resolve(source), name });
      print(o.json, image, () => `imported ${image.name} (${image.digest}, ${image.layers} layer${image.layers === 1 ? "" : "s"})`);
      return 0;
    }
    case "pull": {
      const [reference, name] = rest;
      if (!reference) throw new PaddockError("E_INVALID_PARAMS", "paddock image pull needs a REFERENCE", "e.g. paddock image pull docker.io/library/debian:12 debian:12");
      // The agent reports each step (skopeo's lines) while it pulls.
      if (!o.json) client.onNotification((method, params) => method === "image/progress" && process.stderr.write(`${params.step}\n`));
      const image = await client.request("image/pull", { reference, ...(name ? { name } : {}), ...(o.insecure ? { insecure: true } : {}) });
      print(o.json, image, () => `pulled ${image.name} (${image.digest}, ${image.layers} layer${image.layers === 1 ? "" : "s"})`);
      return 0;
    }
    case "default": {
      const image = await client.request("image/default", {});
      print(o.json, image, () => `${image.name} (${image.digest}), built from this machine's busybox`);
      return 0;
    }
    case "rm": {
      const [name] = rest;
      if (!name) throw new PaddockError("E_INVALID_PARAMS", "paddock image rm needs a NAME", "paddock image ls lists them");
      const result = await client.request("image/remove", { name });
      print(o.json, result, () => (result.removed ? `removed ${name}` : `${name} was not there`));
      return 0;
    }
    default:
      throw new PaddockError("E_INVALID_PARAMS", `unknown image command ${JSON.stringify(verb)}`, "paddock image ls | import SOURCE NAME | pull REFERENCE [NAME] | default | rm NAME");
  }
}
