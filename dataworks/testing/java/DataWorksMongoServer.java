/*
 * DataWorks' launcher for mongo-java-server (the second test server, next to FerretDB).
 *
 *   java -cp "classes:lib/*" DataWorksMongoServer --port N [--backend memory|h2] [--file PATH]
 *        [--oplog [--oplog-window ENTRIES]] [--explain]
 *
 * Binds 127.0.0.1 only, prints "listening 127.0.0.1:N" once it accepts connections, stops on
 * SIGTERM. What it changes on top of the library, and why:
 *  - reports MongoDB 4.4 / wire version 9: PyMongo >= 4.14 refuses the library's newest (wire 8);
 *  - answers an explicit `hello` like `isMaster` (the library knows only the latter);
 *  - `listCollections` applies its `filter` (the library ignores it) and gives each collection's
 *    `info.uuid`, as MongoDB does (DataWorks tells a collection seen through a proxy by it);
 *  - change streams (with --oplog): the aggregate reply carries `operationTime` (PyMongo needs
 *    it to open a stream without a start time), and an update event's `documentKey` is
 *    `{_id: ...}` (the library puts the update document there);
 *  - reply sizes as MongoDB's: a `find` without `batchSize` returns its first 101 documents and
 *    a `getMore` without one about 16 MiB (the library put every remaining document in one
 *    reply: 170 MB for 100,000 volvo documents, which mongodump's Go driver refuses with
 *    "length of read message too large", its limit being maxMessageSizeBytes, 48 MB);
 *  - with --explain, `explain` of a `find` says how the library runs it: an `_id` equality or
 *    `$in` is an index lookup (IXSCAN), anything else a COLLSCAN (under a SORT when sorted),
 *    since its `_id` index serves no ranges. Without the flag `explain` stays unknown (59),
 *    and DataWorks takes `_id` ranges to be seekable, so that the tests exercise the range
 *    reads Atlas and Cosmos DB get; the benchmark sets it, so that migrate reads this server
 *    as it reads any server whose ranges scan (natural order; one verify partition);
 *  - change streams, cost: the library looks each update's `updateLookup` document up by a scan
 *    of the whole collection, and finding an update's `_id` took a scan of the whole oplog per
 *    event; here the document comes from the `_id` index and the oplog is read once per page
 *    (the same answers; a test server whose stream cost grew with every loaded document
 *    measured itself, not the client, in the live-migration benchmarks);
 *  - the oplog keeps the last ENTRIES (default 50,000; 0: all) like MongoDB's capped oplog,
 *    so that a test session's memory stays bounded; a stream resumed from before the window
 *    fails with ChangeStreamHistoryLost (286), as on MongoDB, instead of silently skipping.
 */

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.Cursor;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.InMemoryCursor;
import de.bwaldvogel.mongo.backend.DefaultQueryMatcher;
import de.bwaldvogel.mongo.backend.aggregation.Aggregation;
import de.bwaldvogel.mongo.backend.aggregation.stage.AggregationStage;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.bson.BsonTimestamp;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;
import de.bwaldvogel.mongo.oplog.Oplog;
import de.bwaldvogel.mongo.wire.bson.BsonEncoder;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;

public final class DataWorksMongoServer {

    static final MongoVersion MONGO_4_4 = new MongoVersion() {
        @Override
        public List<Integer> getVersionArray() {
            return List.of(4, 4, 0);
        }

        @Override
        public int getWireVersion() {
            return 9;
        }
    };

    /** Start time of the change stream opened by the current command (same thread). */
    static final ThreadLocal<BsonTimestamp> STREAM_START = new ThreadLocal<>();

    /** Oplog entries kept (0: all). */
    static int oplogWindow = 50_000;

    /** Answer `explain` (--explain). */
    static boolean explain = false;

    public static void main(String[] args) throws Exception {
        int port = -1;
        String backendName = "memory";
        String file = null;
        boolean oplog = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--port" -> port = Integer.parseInt(args[++i]);
                case "--backend" -> backendName = args[++i];
                case "--file" -> file = args[++i];
                case "--oplog" -> oplog = true;
                case "--oplog-window" -> oplogWindow = Integer.parseInt(args[++i]);
                case "--explain" -> explain = true;
                default -> throw new IllegalArgumentException("unknown argument: " + args[i]);
            }
        }
        if (port < 0) {
            throw new IllegalArgumentException("--port is required");
        }
        MongoBackend backend = switch (backendName) {
            case "memory" -> new Memory();
            case "h2" -> new H2(requireFile(file));
            default -> throw new IllegalArgumentException("--backend must be memory or h2");
        };
        backend.version(MONGO_4_4);
        MongoServer server = new MongoServer(backend);
        if (oplog) {
            server.enableOplog();
        }
        server.bind("127.0.0.1", port);
        // shutdownNow closes the backend too, which commits the H2 file.
        Runtime.getRuntime().addShutdownHook(new Thread(server::shutdownNow));
        System.out.println("listening 127.0.0.1:" + port);
        System.out.flush();
        Thread.currentThread().join();
    }

    private static String requireFile(String file) {
        if (file == null) {
            throw new IllegalArgumentException("--backend h2 needs --file PATH");
        }
        return file;
    }

    /** MongoDB's first batch when `find` gives no `batchSize`. */
    static final int DEFAULT_FIRST_BATCH = 101;
    /** MongoDB's limit of a batch's size (a `getMore` without `batchSize`). */
    static final int MAX_BATCH_BYTES = 16 * 1024 * 1024;

    /** The command fixes both backends share. */
    static Document handle(MongoBackend backend, MongoBackendCall call, CursorRegistry cursors,
                           Channel channel, String db, String command, Document query) {
        if (command.equalsIgnoreCase("find") && !query.containsKey("batchSize")) {
            query = query.clone();
            query.put("batchSize", DEFAULT_FIRST_BATCH);
        }
        if (command.equalsIgnoreCase("getMore") && !query.containsKey("batchSize")) {
            Document reply = getMoreUpTo16MiB(cursors, db, command, query);
            if (reply != null) {
                return reply;
            }
        }
        if (explain && command.equalsIgnoreCase("explain")) {
            return explainFind(query);
        }
        if (command.equalsIgnoreCase("hello")) {
            Document reply = call.handle(channel, db, "isMaster", query);
            reply.put("isWritablePrimary", Boolean.TRUE);
            return reply;
        }
        STREAM_START.remove();
        Document reply = call.handle(channel, db, command, query);
        if (command.equalsIgnoreCase("listCollections")) {
            fixListCollections(backend, db, query, reply);
        }
        BsonTimestamp start = STREAM_START.get();
        if (start != null && command.equalsIgnoreCase("aggregate")) {
            reply.put("operationTime", start);
            STREAM_START.remove();
        }
        return reply;
    }

    /** The plan the library follows for a `find`: only `_id` equality or `$in` uses the index. */
    static Document explainFind(Document query) {
        if (!(query.get("explain") instanceof Document inner) || !inner.containsKey("find")) {
            throw new MongoServerError(59, "CommandNotFound", "explain: only find is explained");
        }
        Document filter = inner.get("filter") instanceof Document f ? f : new Document();
        Object id = filter.get("_id");
        boolean lookup = id != null && (!(id instanceof Document condition)
            || condition.keySet().stream().allMatch(key -> key.equals("$eq") || key.equals("$in")));
        Document plan = lookup
            ? new Document("stage", "FETCH").append("inputStage", new Document("stage", "IXSCAN")
                .append("indexName", "_id_"))
            : new Document("stage", "COLLSCAN");
        if (inner.get("sort") instanceof Document sort && !sort.isEmpty()) {
            plan = new Document("stage", "SORT").append("inputStage", plan);
        }
        Document planner = new Document("namespace", inner.get("find")).append("winningPlan", plan);
        Document reply = new Document("queryPlanner", planner);
        reply.put("ok", 1.0);
        return reply;
    }

    /** The next ~16 MiB of an in-memory cursor (null: another kind, the library answers). */
    static Document getMoreUpTo16MiB(CursorRegistry cursors, String db, String command,
                                     Document query) {
        long cursorId = ((Number) query.get(command)).longValue();
        Cursor cursor = cursors.getCursor(cursorId);  // CursorNotFound (43) when unknown
        if (!(cursor instanceof InMemoryCursor)) {
            return null;  // change streams: their own batching
        }
        List<Document> batch = new ArrayList<>();
        ByteBuf buffer = Unpooled.buffer();
        try {
            long bytes = 0;
            while (bytes < MAX_BATCH_BYTES && !cursor.isEmpty()) {
                Document document = cursor.takeDocuments(1).get(0);
                buffer.clear();
                BsonEncoder.encodeDocument(document, buffer);
                bytes += buffer.writerIndex();
                batch.add(document);
            }
        } finally {
            buffer.release();
        }
        if (cursor.isEmpty()) {
            cursors.remove(cursor);
        }
        Document reply = new Document();
        reply.put("id", cursor.isEmpty() ? 0L : cursorId);
        reply.put("ns", db + "." + query.get("collection"));
        reply.put("nextBatch", batch);
        Document response = new Document("cursor", reply);
        response.put("ok", 1.0);
        return response;
    }

    @SuppressWarnings("unchecked")
    static void fixListCollections(MongoBackend backend, String db, Document query, Document reply) {
        if (!(reply.get("cursor") instanceof Document cursor)
            || !(cursor.get("firstBatch") instanceof List<?> batch)) {
            return;
        }
        List<Document> infos = (List<Document>) batch;
        if (query.get("filter") instanceof Document filter && !filter.isEmpty()) {
            DefaultQueryMatcher matcher = new DefaultQueryMatcher();
            infos.removeIf(info -> !matcher.matches(info, filter));
        }
        for (Document info : infos) {
            MongoCollection<?> collection = backend.resolveDatabase(db)
                .resolveCollection((String) info.get("name"), false);
            if (collection != null && info.get("info") instanceof Document details) {
                details.put("uuid", collection.getUuid());
            }
        }
    }

    interface MongoBackendCall {
        Document handle(Channel channel, String db, String command, Document query);
    }

    static Oplog fixOplog(Oplog oplog, MongoBackend backend) {
        @SuppressWarnings("unchecked")
        MongoCollection<Document> collection = (MongoCollection<Document>)
            backend.resolveDatabase("local").resolveCollection("oplog.rs", true);
        return new FixedOplog(oplog, collection, backend);
    }

    static final class Memory extends MemoryBackend {
        @Override
        public Document handleCommand(Channel channel, String db, String command, Document query) {
            return handle(this, super::handleCommand, getCursorRegistry(), channel, db, command, query);
        }

        @Override
        protected Oplog createOplog() {
            return fixOplog(super.createOplog(), this);
        }
    }

    static final class H2 extends H2Backend {
        H2(String file) {
            super(file);
        }

        @Override
        public Document handleCommand(Channel channel, String db, String command, Document query) {
            return handle(this, super::handleCommand, getCursorRegistry(), channel, db, command, query);
        }

        @Override
        protected Oplog createOplog() {
            return fixOplog(super.createOplog(), this);
        }
    }

    /** The library's oplog, with a known start time and a corrected update `documentKey`. */
    static final class FixedOplog implements Oplog {
        private final Oplog delegate;
        private final MongoCollection<Document> collection;
        private final MongoBackend backend;
        private final Object clock;
        private final Method clockNow;
        private long sinceTrim;
        /** The newest entry trimmed away (null: none yet). */
        private volatile BsonTimestamp trimmedUpTo;

        FixedOplog(Oplog delegate, MongoCollection<Document> collection, MongoBackend backend) {
            this.delegate = delegate;
            this.collection = collection;
            this.backend = backend;
            try {
                Field field = delegate.getClass().getDeclaredField("oplogClock");
                field.setAccessible(true);
                clock = field.get(delegate);
                clockNow = clock.getClass().getDeclaredMethod("now");
                clockNow.setAccessible(true);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException("unexpected mongo-java-server oplog", e);
            }
        }

        @Override
        public void handleInsert(String namespace, List<Document> documents) {
            delegate.handleInsert(namespace, documents);
            added(documents.size());
        }

        @Override
        public void handleUpdate(String namespace, Document selector, Document query, List<Object> ids) {
            delegate.handleUpdate(namespace, selector, query, ids);
            added(ids.size());
        }

        @Override
        public void handleDelete(String namespace, Document query, List<Object> deletedIds) {
            delegate.handleDelete(namespace, query, deletedIds);
            added(deletedIds.size());
        }

        /** Every window/4 new entries, drop all but the newest `oplogWindow`. */
        private synchronized void added(int entries) {
            sinceTrim += entries;
            if (oplogWindow <= 0 || sinceTrim < Math.max(1, oplogWindow / 4)) {
                return;
            }
            sinceTrim = 0;
            List<Document> all = collection.queryAllAsStream()
                .sorted((a, b) -> ((BsonTimestamp) a.get("ts")).compareTo((BsonTimestamp) b.get("ts")))
                .toList();
            int excess = all.size() - oplogWindow;
            if (excess <= 0) {
                return;
            }
            for (Document entry : all.subList(0, excess)) {
                collection.removeDocument(entry);
            }
            trimmedUpTo = (BsonTimestamp) all.get(excess - 1).get("ts");
        }

        /** ChangeStreamHistoryLost when the stream would start before the kept window. */
        private void checkWindow(Document changeStream) {
            BsonTimestamp trimmed = trimmedUpTo;
            if (trimmed == null) {
                return;
            }
            boolean lost;
            if (changeStream.get("startAtOperationTime") instanceof BsonTimestamp time) {
                lost = time.compareTo(trimmed) <= 0;  // from `time` on, inclusive
            } else {
                Object token = changeStream.containsKey("startAfter")
                    ? changeStream.get("startAfter") : changeStream.get("resumeAfter");
                if (!(token instanceof Document document && document.get("_data") instanceof String hex)) {
                    return;
                }
                // After the token's entry (its hex is the entry's timestamp).
                lost = new BsonTimestamp(Long.parseUnsignedLong(hex, 16)).compareTo(trimmed) < 0;
            }
            if (lost) {
                throw new MongoServerError(286, "ChangeStreamHistoryLost",
                    "the resume point is older than the oplog kept (--oplog-window)");
            }
        }

        @Override
        public void handleDropCollection(String namespace) {
            delegate.handleDropCollection(namespace);
        }

        @Override
        public Cursor createCursor(Document changeStream, String namespace, Aggregation aggregation) {
            checkWindow(changeStream);
            if (!changeStream.containsKey("startAfter") && !changeStream.containsKey("resumeAfter")
                && !changeStream.containsKey("startAtOperationTime")) {
                // Start "now", explicitly, so the reply can say where: the first event after
                // the last one written (the library's increment is global and grows by one).
                BsonTimestamp now = now();
                BsonTimestamp start = new BsonTimestamp(
                    ((long) now.getTime() << 32) | (now.getInc() + 1L));
                changeStream = changeStream.clone().append("startAtOperationTime", start);
                STREAM_START.set(start);
            }
            boolean lookup = "updateLookup".equals(changeStream.get("fullDocument"));
            if (lookup) {  // looked up by LookUpById instead of the library's collection scan
                changeStream = changeStream.clone();
                changeStream.remove("fullDocument");
            }
            aggregation.getStages().add(0, new UpdateDocumentKey());
            if (lookup) {
                aggregation.getStages().add(1, new LookUpById(namespace));
            }
            return delegate.createCursor(changeStream, namespace, aggregation);
        }

        private BsonTimestamp now() {
            try {
                return (BsonTimestamp) clockNow.invoke(clock);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            }
        }

        /** Replaces an update event's documentKey (the update) with the `{_id}` from the oplog. */
        final class UpdateDocumentKey implements AggregationStage {
            @Override
            public String name() {
                return "$dataworksUpdateDocumentKey";
            }

            /** Called once per page: the oplog is read once, at the page's first update. */
            @Override
            public Stream<Document> apply(Stream<Document> events) {
                Map<Object, Object> ids = new HashMap<>();  // oplog ts -> the update's _id
                boolean[] read = {false};
                return events.map(event -> {
                    if (!"update".equals(event.get("operationType"))) {
                        return event;
                    }
                    if (!read[0]) {
                        read[0] = true;
                        collection.queryAllAsStream().forEach(entry -> {
                            if (entry.get("o2") instanceof Document key) {
                                ids.put(entry.get("ts"), key.get("_id"));
                            }
                        });
                    }
                    Object id = ids.get(event.get("clusterTime"));
                    if (id != null) {
                        event.put("documentKey", new Document("_id", id));
                    }
                    return event;
                });
            }
        }

        /**
         * `fullDocument: updateLookup` through the `_id` index: an update event gets the
         * document as it is now, or keeps the update's own fields when it is gone (what the
         * library answers then).
         */
        final class LookUpById implements AggregationStage {
            private final String namespace;

            LookUpById(String namespace) {
                this.namespace = namespace;
            }

            @Override
            public String name() {
                return "$dataworksLookUpById";
            }

            @Override
            public Stream<Document> apply(Stream<Document> events) {
                int dot = namespace.indexOf('.');
                MongoCollection<?> documents = dot < 0 ? null
                    : backend.resolveDatabase(namespace.substring(0, dot))
                        .resolveCollection(namespace.substring(dot + 1), false);
                return events.map(event -> {
                    if (documents != null && "update".equals(event.get("operationType"))
                        && event.get("documentKey") instanceof Document key && key.containsKey("_id")) {
                        Iterator<Document> found = documents.handleQuery(
                            new Document("_id", key.get("_id"))).iterator();
                        if (found.hasNext()) {
                            event.put("fullDocument", found.next());
                        }
                    }
                    return event;
                });
            }
        }
    }
}
