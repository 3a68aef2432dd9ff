/** Every `tenancy` command, one file each. Adding a command: write the file, add it here. */
import type { Command } from "../tenancy";

export const commands: Command[] = [];
