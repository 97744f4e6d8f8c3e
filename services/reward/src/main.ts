export const name = "reward";
