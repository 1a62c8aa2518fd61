/** The protocol's version, apart from the schemas: clients import it without loading zod. */
export const PROTOCOL_VERSION = "1.0";
