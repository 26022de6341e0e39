// NAME
//   queue_fill -- writes many queued messages straight into a queue
//   database, with the server's own queue code, for the queue-scale and NDR
//   storm benchmarks.
//
// SYNOPSIS
//   queue_fill DB COUNT [--postoffice NAME] [--sender ADDR] [--recipient ADDR]
//              [--bytes N] [--open-retries N] [--due-after SECONDS]
//              [--due-within SECONDS] [--finished-ago SECONDS] [--batch N]
//
// DESCRIPTION
//   Appends COUNT messages to DB (created when missing), each with one
//   delivery to postoffice NAME (default "dead") for ADDR (default
//   bob@dead.example.test), from --sender (default
//   ann@senders.example.test), with a body that makes the message BYTES long
//   (default 2048). Each delivery starts with --open-retries failed opens
//   (default 0; state "deferred" when above 0) and becomes due --due-after
//   seconds from now (default 0), the deliveries spread evenly over the
//   --due-within seconds after that (default 0: all at once). With
//   --finished-ago, each message is received that many seconds ago instead
//   and its delivery delivered then, with that attempt in the log (for the
//   purge benchmark).
//   Rows go in through queue_db::insert_message and update_delivery, --batch
//   messages (default 10000) per transaction. Prints the rate and file size.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "runtime/store/message_id.hpp"
#include "runtime/store/queue_db.hpp"

using namespace postconn;
namespace fs = std::filesystem;

namespace {

struct fill_options {
  fs::path db;
  long count = 0;
  std::string postoffice = "dead";
  std::string sender = "ann@senders.example.test";
  std::string recipient = "bob@dead.example.test";
  long bytes = 2048;
  int open_retries = 0;
  long due_after = 0;
  long due_within = 0;
  long finished_ago = 0;
  long batch = 10000;
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: queue_fill DB COUNT [--postoffice NAME] [--sender ADDR] "
               "[--recipient ADDR] [--bytes N] [--open-retries N] "
               "[--due-after SECONDS] [--due-within SECONDS] [--finished-ago SECONDS] "
               "[--batch N]\n");
  std::exit(2);
}

fill_options parse(int argc, char** argv) {
  if (argc < 3)
    usage();
  fill_options opts;
  opts.db = argv[1];
  opts.count = std::stol(argv[2]);
  for (int i = 3; i < argc; i += 2) {
    std::string key = argv[i];
    if (i + 1 >= argc)
      usage();
    std::string value = argv[i + 1];
    if (key == "--postoffice")
      opts.postoffice = value;
    else if (key == "--sender")
      opts.sender = value;
    else if (key == "--recipient")
      opts.recipient = value;
    else if (key == "--bytes")
      opts.bytes = std::stol(value);
    else if (key == "--open-retries")
      opts.open_retries = std::stoi(value);
    else if (key == "--due-after")
      opts.due_after = std::stol(value);
    else if (key == "--due-within")
      opts.due_within = std::stol(value);
    else if (key == "--finished-ago")
      opts.finished_ago = std::stol(value);
    else if (key == "--batch")
      opts.batch = std::stol(value);
    else
      usage();
  }
  if (opts.count <= 0 || opts.batch <= 0)
    usage();
  return opts;
}

std::string content_of(const fill_options& opts, long number) {
  std::string head = "Received: from bench.example.test by connector.example.test\r\n"
                     "From: <" + opts.sender + ">\r\nTo: <" + opts.recipient
                     + ">\r\nSubject: queue_fill " + std::to_string(number)
                     + "\r\nMessage-ID: <" + std::to_string(number)
                     + "@bench.example.test>\r\n\r\n";
  std::string line(76, 'x');
  line += "\r\n";
  auto content = head;
  while (static_cast<long>(content.size()) + static_cast<long>(line.size()) <= opts.bytes)
    content += line;
  return content;
}

} // namespace

int main(int argc, char** argv) {
  auto opts = parse(argc, argv);
  auto started = std::chrono::steady_clock::now();
  auto db = queue_db::open(opts.db);
  message_id_generator ids{db->last_message_id()};
  auto now = static_cast<std::int64_t>(std::time(nullptr)) - opts.finished_ago;
  auto now_micros = static_cast<std::uint64_t>(now) * 1000000u;
  incoming_message msg;
  msg.sender = opts.sender;
  msg.received_at = now;
  msg.deliveries = {{opts.postoffice, {opts.recipient}}};
  for (long done = 0; done < opts.count;) {
    db->begin();
    for (long end = std::min(opts.count, done + opts.batch); done < end; ++done) {
      msg.content = content_of(opts, done);
      auto created = db->insert_message(ids.next(now_micros), msg);
      auto& entry = created.front();
      entry.open_retries = opts.open_retries;
      entry.state = opts.open_retries > 0 ? delivery_state::deferred : delivery_state::queued;
      entry.first_attempt_at = opts.open_retries > 0 ? now : 0;
      entry.next_attempt_at = now + opts.due_after + opts.due_within * done / opts.count;
      if (opts.finished_ago > 0) {
        entry.state = delivery_state::delivered;
        db->insert_attempt({entry.delivery_id, now, "delivered", "2.0.0", "queue_fill"});
      }
      if (opts.open_retries > 0) {
        entry.last_error_code = "4.4.1";
        entry.last_error_text = "queue_fill: postoffice unreachable";
      }
      db->update_delivery(entry);
    }
    db->commit();
  }
  double seconds
    = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("queue_fill: %ld messages to postoffice %s in %.1fs (%.0f/s); %s is %.1f MiB\n",
              opts.count, opts.postoffice.c_str(), seconds, opts.count / seconds,
              opts.db.c_str(), fs::file_size(opts.db) / 1048576.0);
}
